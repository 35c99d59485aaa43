"""Every machine of the Choria conformance corpus, judged by the real validator.

Each file in ``tests/conformance/choria`` has its expected verdict below: the exact list of
problems the validator reports (each a ``file:line:column: path: message`` line; a warning
says ``warning:``), so ``[]`` is a valid machine without warnings. A file added without a verdict,
a verdict without a file, a machine that stops validating and a rejection that goes away
(say, when the ``plugins`` watcher type lands) all fail here, so the README table is updated
with the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from steward.errors import SpecError
from steward.fleet.install import Layout, render
from steward.fleet.spec import Entry
from steward.machine.spec import MachineSpec
from steward.machine.validate import check_references
from steward.templates import Template
from steward.watchers.registry import default_registry
from tests.support.conformance import CORPUS, corpus_files
from tests.support.machines import parse

SUPPORTED = ", ".join(default_registry().names())  # an unsupported-type error lists them


def unsupported(file: str, where: str, index: int, wtype: str, watcher: str) -> str:
    return (
        f"{file}:{where}: watchers[{index}].type: unsupported watcher type '{wtype}' "
        f"(watcher '{watcher}'); supported: {SUPPORTED}"
    )


def bad_name(file: str, name: str) -> str:
    return (
        f"{file}:1:7: name: invalid machine name '{name}': use letters, digits, '_', '-' and "
        "'.', starting with a letter or digit (at most 128 characters)"
    )


def template_interval(file: str) -> str:
    return (
        f"{file}:17:15: watchers[0].interval: invalid duration '{{{{.Interval}}}}' "
        "(use a number and a unit: ms, s, m, h, d, w; e.g. 1m30s)"
    )


VALID: list[str] = []
TEMPLATE = ["a Go template, rendered before it is a machine"]

EXPECTED: dict[str, list[str]] = {
    # go-choria aagent/machine/testdata
    "testmachine.yaml": VALID,
    "subscriber.yaml": VALID,
    "empty.yaml": [  # `{}`: Choria's test of a machine file with nothing in it
        f"empty.yaml:1:1: missing required field '{field}'"
        for field in ("name", "version", "initial_state", "transitions")
    ],
    # go-choria fleet management: the kv, machines and plugins watchers
    "machine-manager.yaml": VALID,
    "plugins-machines-manager.yaml": VALID,
    # go-choria Go templates the machines/plugins watchers render into machines: checked
    # rendered (test_rendered_templates_are_valid_machines), not as they are
    "machines-watcher-managed.yaml": TEMPLATE,
    "plugins-watcher-managed.yaml": TEMPLATE,
    # choria.io documentation and blog
    "hvac.yaml": [
        "hvac.yaml:51:25: watchers[1].success_transition: no transition named 'idle'; "
        "'idle' is a state, the transition to it is 'variables_changed' or 'air_good'"
    ],
    "check_httpd.yaml": VALID,
    "container-manager.yaml": VALID,
    # choria-io/machine-room
    "echo.yaml": VALID,
    "machine-room-machines-manager.yaml": VALID,
    # ripienaar/choria-compose
    # Puppet's choria::scout_check writes `gossfile: ""` for every builtin check; Choria
    # needs it only for the goss builtin, and so does steward
    "check_choria.yaml": VALID,
    "external_agent_manager.yaml": VALID,
    "facts.yaml": VALID,
}


def load(name: str) -> MachineSpec:
    return parse((CORPUS / name).read_bytes(), file=name)


def verdict(name: str) -> list[str]:
    """The problems that reject the machine, or the warnings of a valid one."""
    try:
        spec = load(name)
    except SpecError as exc:
        return [str(p) for p in exc.problems]
    return [str(w) for w in spec.warnings]


def test_every_file_has_a_verdict_and_every_verdict_a_file() -> None:
    assert sorted(p.name for p in corpus_files()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e != TEMPLATE))
def test_verdict(name: str) -> None:
    assert verdict(name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e == TEMPLATE))
def test_rendered_templates_are_valid_machines(name: str, tmp_path: Path) -> None:
    """Choria's managed-machine templates, rendered for one entry as the machines and
    plugins watchers render them, are valid machines (an archive watcher each)."""
    entry = Entry(
        name="web",
        source="https://example.com/web.tar.gz",
        checksum="a" * 64,
        verify_checksum="b" * 64,
        governor="rollout",
    )
    layout = Layout(tmp_path, tmp_path / "plugins", "mm", "2m0s")
    text = render(entry, layout, Template.parse((CORPUS / name).read_text()))
    spec = parse(text, file=name)
    assert [w.type for w in spec.watchers] == ["archive"]
    assert spec.name == "mm_web"


def test_valid_machines_resolve_each_other() -> None:
    """Loaded on one node together, the valid machines' names are unique and every
    ``subscribe`` and ``foreign_state_required`` resolves (Subscriber follows TestMachine)."""
    specs = [load(name) for name, expected in EXPECTED.items() if expected == VALID]
    # machine-room ships its own copy of go-choria's machines manager: one of them per node
    by_name = {spec.name: spec for spec in specs}
    assert sorted(s.name for s in specs if by_name[s.name] is not s) == ["machines_manager"]
    assert check_references(list(by_name.values())) == []


def test_readme_has_a_row_per_file() -> None:
    readme = (CORPUS / "README.md").read_text()
    rows = set(re.findall(r"^\| `?([\w.-]+\.yaml)`? \|", readme, re.MULTILINE))
    assert rows == set(EXPECTED)
