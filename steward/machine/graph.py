"""A machine's states and transitions as Graphviz dot or Mermaid."""

from __future__ import annotations

import json

from steward.machine.spec import MachineSpec


def _q(text: str) -> str:
    return json.dumps(text)


def to_dot(spec: MachineSpec) -> str:
    lines = [f"digraph {_q(spec.name)} {{", "  rankdir=LR;", "  node [shape=ellipse];"]
    lines.append('  "__start" [shape=point, label=""];')
    lines.append(f'  "__start" -> {_q(spec.initial_state)};')
    for state in spec.states:
        lines.append(f"  {_q(state)};")
    for t in spec.transitions:
        for src in t.sources:
            lines.append(f"  {_q(src)} -> {_q(t.destination)} [label={_q(t.name)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(state: str, ids: dict[str, str]) -> str:
    if state not in ids:
        ids[state] = f"s{len(ids)}"
    return ids[state]


def to_mermaid(spec: MachineSpec) -> str:
    ids: dict[str, str] = {}
    lines = ["stateDiagram-v2"]
    for state in spec.states:
        label = state.replace('"', "'")
        lines.append(f'    state "{label}" as {_mermaid_id(state, ids)}')
    lines.append(f"    [*] --> {_mermaid_id(spec.initial_state, ids)}")
    for t in spec.transitions:
        for src in t.sources:
            label = t.name.replace(":", " ")
            lines.append(
                f"    {_mermaid_id(src, ids)} --> {_mermaid_id(t.destination, ids)}: {label}"
            )
    return "\n".join(lines) + "\n"
