"""A machine's transition rules, as data, checked by the ``transitions`` library.

The graph only answers "where does transition T lead from state S?"; the runtime owns the
current state, because moving it must first be committed to disk.

The ``transitions`` machine is built once per distinct rule table and turned into a lookup
table (transition, state) -> destination: building one costs ~0.2 ms and asking it through
``get_transitions`` ~10 µs, which at 10,000 machines was a large part of loading and of every
``steward status``. Machines with the same rules share one graph (``StateGraph.of``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from transitions import Machine

from steward.machine.spec import MachineSpec

Rules = tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...], str], ...], str]


class StateGraph:
    __slots__ = ("_available", "_names", "_table", "states")

    def __init__(self, rules: Rules) -> None:
        self.states = rules[0]
        self._names, self._table, self._available = _compile(rules)

    @staticmethod
    def of(spec: MachineSpec) -> StateGraph:
        """The graph of ``spec``'s rules: one object shared by every machine that has them."""
        transitions = tuple((t.name, t.sources, t.destination) for t in spec.transitions)
        return _shared((spec.states, transitions, spec.initial_state))

    def has_transition(self, name: str) -> bool:
        return name in self._names

    def destination(self, name: str, state: str) -> str | None:
        """The state ``name`` leads to from ``state``, or None if it is not valid there."""
        return self._table.get((name, state))

    def available(self, state: str) -> list[str]:
        """Transitions valid from ``state``, sorted."""
        return list(self._available.get(state, ()))


@functools.lru_cache(maxsize=1024)
def _shared(rules: Rules) -> StateGraph:
    return StateGraph(rules)


def _compile(
    rules: Rules,
) -> tuple[frozenset[str], Mapping[tuple[str, str], str], Mapping[str, tuple[str, ...]]]:
    states, transitions, initial = rules
    machine = Machine(
        model=None,
        states=list(states),
        transitions=[
            {"trigger": name, "source": list(sources), "dest": dest}
            for name, sources, dest in transitions
        ],
        initial=initial,
        auto_transitions=False,
    )
    names = frozenset(name for name, _, _ in transitions)
    table: dict[tuple[str, str], str] = {}
    for name in names:
        for state in states:
            found = machine.get_transitions(trigger=name, source=state)
            if found:
                table[(name, state)] = str(found[0].dest)
    available = {state: tuple(sorted(n for (n, s) in table if s == state)) for state in states}
    return names, table, available
