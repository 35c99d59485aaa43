"""A machine's transition rules, as data, checked by the ``transitions`` library.

The graph only answers "where does transition T lead from state S?"; the runtime owns the
current state, because moving it must first be committed to disk.
"""

from __future__ import annotations

from transitions import Machine

from steward.machine.spec import MachineSpec


class StateGraph:
    def __init__(self, spec: MachineSpec) -> None:
        self.states = spec.states
        self._names = {t.name for t in spec.transitions}
        self._machine = Machine(
            model=None,
            states=list(spec.states),
            transitions=[
                {"trigger": t.name, "source": list(t.sources), "dest": t.destination}
                for t in spec.transitions
            ],
            initial=spec.initial_state,
            auto_transitions=False,
        )

    def has_transition(self, name: str) -> bool:
        return name in self._names

    def destination(self, name: str, state: str) -> str | None:
        """The state ``name`` leads to from ``state``, or None if it is not valid there."""
        if name not in self._names:
            return None
        found = self._machine.get_transitions(trigger=name, source=state)
        return str(found[0].dest) if found else None

    def available(self, state: str) -> list[str]:
        """Transitions valid from ``state``."""
        return sorted(n for n in self._names if self.destination(n, state) is not None)
