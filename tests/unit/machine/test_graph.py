"""to_dot and to_mermaid on Choria's TestMachine."""

from __future__ import annotations

import pytest

from steward.machine.graph import to_dot, to_mermaid
from steward.machine.spec import MachineSpec
from steward.machine.validate import load_machine
from steward.watchers.registry import default_registry
from tests.support.conformance import CORPUS

TESTMACHINE = CORPUS / "testmachine.yaml"


@pytest.fixture
def testmachine() -> MachineSpec:
    return load_machine(TESTMACHINE, default_registry())


def test_dot(testmachine: MachineSpec) -> None:
    assert to_dot(testmachine) == (
        'digraph "TestMachine" {\n'
        "  rankdir=LR;\n"
        "  node [shape=ellipse];\n"
        '  "__start" [shape=point, label=""];\n'
        '  "__start" -> "unknown";\n'
        '  "unknown";\n'
        '  "one";\n'
        '  "two";\n'
        '  "unknown" -> "one" [label="fire_1"];\n'
        '  "one" -> "two" [label="fire_2"];\n'
        "}\n"
    )


def test_mermaid(testmachine: MachineSpec) -> None:
    assert to_mermaid(testmachine) == (
        "stateDiagram-v2\n"
        '    state "unknown" as s0\n'
        '    state "one" as s1\n'
        '    state "two" as s2\n'
        "    [*] --> s0\n"
        "    s0 --> s1: fire_1\n"
        "    s1 --> s2: fire_2\n"
    )
