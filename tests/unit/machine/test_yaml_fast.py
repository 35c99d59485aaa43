"""libyaml's C parser (the fast path of ``load_yaml``) gives what ruamel's pure parser gives.

The pure parser is the reference: its errors, values and positions are what the docs and the
other tests show. The fast path must give the same data with the same line/column of every key,
value and item, and the same validation result for every file the fuzz corpus makes. Known
differences: tabs (libyaml accepts a tab as separation inside a line, as YAML 1.2 allows;
ruamel's scanner refuses some; both give a spec or positioned problems), and where an empty
value (null) sits, which no message shows.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

from steward.errors import SpecError
from steward.machine import yamldoc as source
from steward.machine.spec import MachineSpec
from steward.machine.validate import parse_machine
from steward.watchers.registry import default_registry
from tests.support.fuzz_corpus import SNIPPETS, alias_bomb, deep_nesting, fuzzed_files, seed_files

REGISTRY = default_registry()


@pytest.fixture
def pure(monkeypatch: pytest.MonkeyPatch) -> None:
    """``load_yaml`` with the C parser switched off."""
    monkeypatch.setattr(source, "CParser", None)


def positions(data: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (path, value or key position) in a loaded document, in document order."""
    out: list[tuple[str, Any]] = []
    if isinstance(data, CommentedMap):
        for key, value in data.items():
            here = f"{path}.{key}"
            if data.lc.data is None or key not in data.lc.data:
                out.append((here, None))  # a key from a `<<` merge has no position of its own
            else:
                out.append((here, (data.lc.key(key), value_position(value, data.lc.value(key)))))
            out.extend(positions(value, here))
    elif isinstance(data, CommentedSeq):
        for i, value in enumerate(data):
            here = f"{path}[{i}]"
            out.append((here, value_position(value, data.lc.item(i))))
            out.extend(positions(value, here))
    elif isinstance(data, TaggedScalar):  # compares by identity: compare what it holds
        out.append((path, (type(data), data.value, str(data.tag))))
    else:
        out.append((path, (type(data), data)))
    return out


def value_position(value: Any, where: Any) -> Any:
    """Where a value is, except an empty one (null): libyaml puts it where its key or dash
    ends, ruamel at the next token. The validator never shows it (it points at the key)."""
    return None if value is None else where


def load_both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    fast = source.load_yaml(text, "f")
    with monkeypatch.context() as m:
        m.setattr(source, "CParser", None)
        reference = source.load_yaml(text, "f")
    return fast, reference


def validate(raw: bytes) -> MachineSpec | list[str]:
    try:
        return parse_machine(
            raw, REGISTRY, file="f", path=Path("/m/x/machine.yaml"), directory=Path("/m/x")
        )
    except SpecError as exc:
        return [str(p) for p in exc.problems]


def test_the_c_parser_is_installed() -> None:
    # a declared dependency: without it machine files load ~5x slower (bench/timers_10k.py)
    assert source.CParser is not None


@pytest.mark.parametrize(("name", "text"), seed_files(), ids=[n for n, _ in seed_files()])
def test_seed_files_load_the_same_with_the_same_positions(
    name: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference = load_both(text, monkeypatch)
    assert fast == reference
    assert positions(fast) == positions(reference)


@pytest.mark.parametrize(
    "text",
    [
        "a: yes\nb: 0o17\nc: 1_000\nd: 2001-12-14\ne: .inf\nh: ~\ni: 1e3\nj: 010\nk: 0x1F\n",
        "x: [1, {a: b}]\ny: {<<: {p: 1}, q: 2}\n",
        "a: &x [1]\nb: *x\n",
        "a: |\n  x\n  y\nb: >-\n  z\nc: 'it''s'\nd: \"\\u00e9\\/\"\n",
        "%YAML 1.2\n---\nname: x\n",
        "\ufeffname: bom\n",
    ],
)
def test_scalars_tags_and_aliases_resolve_the_same(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference = load_both(text, monkeypatch)
    assert positions(fast) == positions(reference)


@pytest.mark.parametrize(
    "text",
    [
        alias_bomb(9, 9),
        "a: &a [*a]\n",
        deep_nesting(200),
        "name: " + "9" * 5000 + "\n",
        "name: x\nname: y\n",
        "a: [\n",
        "name: \x07\n",
        "--- a\n--- b\n",
    ],
)
def test_refused_documents_are_worded_by_the_pure_parser(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SpecError) as fast:
        source.load_yaml(text, "f")
    monkeypatch.setattr(source, "CParser", None)
    with pytest.raises(SpecError) as reference:
        source.load_yaml(text, "f")
    assert fast.value.problems == reference.value.problems


def loaded(raw: bytes) -> Any:
    """The document's data and positions, or the problems; bytes that are not UTF-8: None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return positions(source.load_yaml(text, "f"))
    except SpecError as exc:
        return exc.problems


def test_plain_documents_never_reach_ruamels_composer(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("a plain document went past _Builder")

    monkeypatch.setattr(source, "_load_pure", refuse)
    for _, text in seed_files():
        assert isinstance(source.load_yaml(text, "f"), CommentedMap)


@pytest.mark.parametrize(
    "text",
    ["a: &x [1]\nb: *x\n", "a: !!str 1\n", "a: {<<: {b: 1}}\n", "? [a]\n: b\n", "a: 1\na: 2\n"],
)
def test_anchors_tags_and_merges_go_to_the_pure_loader(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pure_calls: list[str] = []
    pure = source._load_pure

    def spy(text: str, file: str) -> Any:
        pure_calls.append(text)
        return pure(text, file)

    monkeypatch.setattr(source, "_load_pure", spy)
    with contextlib.suppress(SpecError):
        source.load_yaml(text, "f")
    assert pure_calls == [text]


def test_fuzzed_files_load_and_validate_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    files = [raw for raw in fuzzed_files(400, seed=11) if b"\t" not in raw]
    files += [s.encode() for s in SNIPPETS if "\t" not in s]
    assert len(files) > 300
    fast = [(loaded(raw), validate(raw)) for raw in files]
    monkeypatch.setattr(source, "CParser", None)
    reference = [(loaded(raw), validate(raw)) for raw in files]
    differ = [(raw[:200], f, r) for raw, f, r in zip(files, fast, reference, strict=True) if f != r]
    assert differ == []


def test_custom_tags_load_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # a TaggedScalar compares by identity: positions() compares its value and tag instead
    raw = b"name: x\n: !custom tag\nversion: !other 1\n"
    fast = loaded(raw)
    monkeypatch.setattr(source, "CParser", None)
    assert loaded(raw) == fast
    assert (".None", (TaggedScalar, "tag", "!custom")) in fast
