"""Fuzzed machine files: the validator returns a spec or positioned problems, nothing else.

hypothesis generates and mutates machine files (the shipped machines and the Choria
conformance corpus, random YAML trees, machine-shaped documents with wrong types, alias
bombs, deep nesting, huge integers, long lines, random bytes). For each one ``parse_machine``
must return a ``MachineSpec`` or raise ``SpecError`` whose problems all carry a line and
column — never another exception — within a time and memory budget checked per example.

500 examples in ``make test`` (profile ``steward-fuzz``); ``STEWARD_LONG_TESTS=1`` runs
20,000 (profile ``nightly``). The regression tests below are the exact inputs the fuzzer
found, each fixed in ``steward/machine/source.py``.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from steward.errors import SpecError
from steward.machine.spec import MachineSpec
from steward.machine.validate import check_references, parse_machine
from steward.watchers.registry import default_registry
from tests.support.fuzz_corpus import SNIPPETS, VALUES, alias_bomb, deep_nesting, mutate, seed_files

TIME_LIMIT = 5.0  # seconds one input may take (the worst 1 MB input takes about 2 s)
MEMORY_LIMIT = 64 << 20  # bytes of Python allocations one input may peak at

_COMMON = {
    "deadline": None,  # timed by check() itself, with tracemalloc running
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("steward-fuzz", max_examples=500, **_COMMON)
settings.register_profile("nightly", max_examples=20_000, **_COMMON)
PROFILE = "nightly" if os.environ.get("STEWARD_LONG_TESTS") == "1" else "steward-fuzz"

REGISTRY = default_registry()
SEEDS = seed_files()
HERE = Path("/nonexistent/machines/fuzz")


def check(raw: bytes) -> MachineSpec | SpecError:
    """Validate ``raw`` within the budget; return the spec or the error."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        try:
            spec = parse_machine(
                raw, REGISTRY, file="fuzz.yaml", path=HERE / "machine.yaml", directory=HERE
            )
            check_references([spec])
            result: MachineSpec | SpecError = spec
        except SpecError as exc:
            result = exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert elapsed < TIME_LIMIT, f"took {elapsed:.1f}s"
    assert peak < MEMORY_LIMIT, f"peaked at {peak >> 20} MB"
    if isinstance(result, SpecError):
        assert result.problems, "a SpecError without problems"
        for p in result.problems:
            assert p.file == "fuzz.yaml"
            assert p.line >= 1 and p.column >= 1, f"problem without a position: {p}"
            assert str(p)
        assert str(result)
    return result


# strategies ----------------------------------------------------------------------------------
KEYS = st.sampled_from(
    [
        "name",
        "version",
        "initial_state",
        "splay_start",
        "transitions",
        "watchers",
        "from",
        "destination",
        "subscribe",
        "type",
        "properties",
        "state_match",
        "interval",
        "command",
        "timeout",
        "environment",
        "timer",
        "path",
        "schedules",
        "http",
        "url",
    ]
) | st.text(max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["10s", "1.0.0", "exec", "timer", "file", "health", "idle", "1m30s"])
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=40,
)
WATCHER = st.fixed_dictionaries(
    {"name": SCALARS, "type": st.sampled_from(REGISTRY.names()) | SCALARS},
    optional={
        "properties": st.dictionaries(KEYS, TREES, max_size=6),
        "state_match": TREES,
        "success_transition": SCALARS,
        "interval": SCALARS,
    },
)
MACHINE_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "name": SCALARS,
        "version": st.sampled_from(["1.0.0", "1.0", "v1"]) | SCALARS,
        "initial_state": SCALARS,
        "splay_start": SCALARS,
        "transitions": st.lists(
            st.fixed_dictionaries(
                {"name": SCALARS, "from": TREES, "destination": SCALARS},
                optional={"subscribe": TREES},
            ),
            max_size=4,
        )
        | TREES,
        "watchers": st.lists(WATCHER, max_size=4) | TREES,
        "extra": TREES,
    },
)


def _dump(tree: Any, block: bool) -> bytes:
    if not block:
        return json.dumps(tree, ensure_ascii=False).encode("utf-8", "surrogatepass")
    out = StringIO()
    YAML(typ="safe", pure=True).dump(tree, out)
    return out.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def machine_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated", "tree", "shaped", "hostile", "bytes"]))
    if kind == "mutated":
        _, text = draw(st.sampled_from(SEEDS))
        return mutate(text, draw(st.randoms(use_true_random=False)), draw(st.integers(1, 6)))
    if kind in ("tree", "shaped"):
        tree = draw(TREES if kind == "tree" else MACHINE_SHAPED)
        return _dump(tree, draw(st.booleans()))
    if kind == "hostile":
        return draw(
            st.one_of(
                st.builds(alias_bomb, st.integers(1, 12), st.integers(1, 12)),
                st.builds(deep_nesting, st.integers(1, 300), st.booleans()),
                st.builds(lambda n: f"splay_start: {'9' * n}\n", st.integers(90, 6000)),
                st.builds(lambda n: f"name: {'x' * n}\n", st.integers(1, 200_000)),
                st.sampled_from(SNIPPETS),
                st.sampled_from([f"name: x\nversion: {v}\n" for v in VALUES]),
            ).map(lambda s: s.encode("utf-8", "surrogatepass"))
        )
    return draw(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))


@settings(settings.get_profile(PROFILE))
@given(machine_files())
def test_fuzzed_files_give_a_spec_or_positioned_problems(raw: bytes) -> None:
    check(raw)


@pytest.mark.parametrize(("name", "text"), SEEDS, ids=[n for n, _ in SEEDS])
def test_seeds_stay_within_the_budget(name: str, text: str) -> None:
    result = check(text.encode())
    assert isinstance(result, MachineSpec | SpecError)


# regressions: the exact inputs the fuzzer found ----------------------------------------------
def _problem(raw: str | bytes) -> str:
    result = check(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    assert isinstance(result, SpecError)
    return str(result.problems[0])


def test_alias_bomb_is_refused_at_the_alias() -> None:
    # 9 levels of 9 aliases: 9**9 (387 million) values if expanded
    assert _problem(alias_bomb(9, 9)) == (
        "fuzz.yaml:5:35: YAML: more than 50000 values (aliases count at full size)"
    )


def test_recursive_alias_is_refused() -> None:
    # was accepted as a valid machine whose `environment` was its own watchers list
    text = (
        "name: x\nversion: 1.0.0\ninitial_state: a\n"
        "transitions: [{name: t, from: [a], destination: b}]\n"
        "watchers: &w [{name: q, type: exec, properties: {command: x, environment: *w}}]\n"
    )
    assert _problem(text) == "fuzz.yaml:5:75: YAML: recursive alias *w"


def test_deep_nesting_is_refused_quickly() -> None:
    # took 49 s (the parser recursed until RecursionError) and had no position; check()
    # holds it to TIME_LIMIT
    assert _problem("[" * 100_000) == "fuzz.yaml:1:51: YAML: nested deeper than 50 levels"


def test_alias_that_nests_too_deep_is_refused() -> None:
    levels = [f"l0: &l0 {'[' * 30}x{']' * 30}", f"l1: &l1 {'[' * 21}*l0{']' * 21}"]
    assert _problem("\n".join(levels) + "\n") == (
        "fuzz.yaml:2:30: YAML: alias *l0 nests deeper than 50"
    )


def test_huge_integer_is_a_positioned_problem() -> None:
    # raised ValueError: "Exceeds the limit (4300 digits) for integer string conversion"
    text = "name: x\nversion: 1.0.0\ninitial_state: a\nsplay_start: " + "9" * 5000 + "\n"
    assert _problem(text) == "fuzz.yaml:4:14: YAML: integer longer than 100 characters"
    hexadecimal = "name: x\nsplay_start: 0x" + "f" * 100_000 + "\n"
    assert _problem(hexadecimal) == "fuzz.yaml:2:14: YAML: integer longer than 100 characters"


def test_control_character_names_line_and_column() -> None:
    # the reader's error carried only an offset, so the problem had no line
    assert _problem("a: 1\nname: x\x00\n") == (
        "fuzz.yaml:2:8: YAML: character #x0000 is not allowed (special characters are not allowed)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", "fuzz.yaml:1:1: the document must be a mapping, not a string"),
        ("42", "fuzz.yaml:1:1: the document must be a mapping, not an integer"),
        ("", "fuzz.yaml:1:1: the document must be a mapping, not null"),
        ("- a\n- b\n", "fuzz.yaml:1:1: the document must be a mapping, not a list"),
    ],
)
def test_a_document_that_is_not_a_mapping(text: str, expected: str) -> None:
    assert _problem(text) == expected


def test_non_string_keys_are_unknown_fields() -> None:
    text = "name: x\n1: a\n? [a, b]\n: c\n~: d\n"
    messages = [p.message for p in check(text.encode()).problems]  # type: ignore[union-attr]
    assert any(m.startswith("unknown field '1'") for m in messages)
    assert any(m.startswith("unknown field \"('a', 'b')\"") for m in messages)
    assert any(m.startswith("unknown field 'None'") for m in messages)


def test_duplicate_keys_are_a_positioned_problem() -> None:
    assert _problem("name: a\nname: b\n") == (
        'fuzz.yaml:2:1: YAML: found duplicate key "name" with value "b" (original value: "a")'
    )


HEALTH = "name: x\nwatchers: [{name: w, type: health, properties: {%s}}]\n"


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        # raised ValueError: Invalid IPv6 URL (urlsplit)
        (
            "http: {url: 'http://[::1'}",
            "must be an http:// or https:// URL with a host, got 'http://[::1'",
        ),
        # raised ValueError from int(): '²' is a digit to str.isdigit, not to int()
        ("tcp: {address: 'host:²'}", "must be host:port with a port 1-65535, got 'host:²'"),
    ],
)
def test_health_addresses_python_cannot_parse(properties: str, expected: str) -> None:
    result = check((HEALTH % properties).encode())
    assert isinstance(result, SpecError)
    assert expected in [p.message for p in result.problems]


def test_a_very_long_line_stays_within_the_budget() -> None:
    assert _problem("name: " + "x" * 300_000).startswith("fuzz.yaml:1:1: missing required field")
