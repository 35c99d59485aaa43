"""What a running machine tells an observer (the daemon's metrics) as things happen.

Only what cannot be read back later goes through here: each committed transition, each
rejected one, and each watcher run with its duration. Everything else (current state, time
in state, watcher status) is read from the live machine when someone asks. ``NO_OBSERVER``
is the null object used when nobody watches (unit tests, ``steward validate``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from steward.machine.runtime import TransitionResult
    from steward.watchers.base import Watcher, WatcherResult


class MachineObserver(Protocol):
    def transitioned(self, machine: str, result: TransitionResult) -> None:
        """A transition was committed and moved the machine (never a self-transition)."""

    def rejected(self, machine: str, transition: str) -> None:
        """A transition was not valid from the machine's current state."""

    def watcher_ran(
        self, machine: str, watcher: Watcher, result: WatcherResult, duration: float
    ) -> None:
        """A watcher's check finished (``duration`` in seconds), whatever its outcome."""


class _NoObserver:
    def transitioned(self, machine: str, result: TransitionResult) -> None:
        pass

    def rejected(self, machine: str, transition: str) -> None:
        pass

    def watcher_ran(
        self, machine: str, watcher: Watcher, result: WatcherResult, duration: float
    ) -> None:
        pass


NO_OBSERVER: MachineObserver = _NoObserver()
