"""What every watcher shares: its result, the machine handle it sees, and the run loop.

A watcher type implements only ``check()``. The base decides when checks run: at once when
the watcher becomes active (machine start after splay, or entering a matching state), then
every ``interval``; it cancels a running check when the watcher stops being active, and hands
each result to the machine, tagged with the state version the check started in so the
machine drops the transition if it moved on meanwhile.

Only the run loop needs asyncio (and logging): it imports them when it runs, so ``steward
validate``, which needs each type's properties and not its loop, starts without them (~18 ms
of a ~100 ms command; bench/cli_speed.py).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from steward.machine.source import Fields
from steward.machine.spec import WatcherSpec

if TYPE_CHECKING:
    import asyncio

    from steward.watchers.context import WatcherContext


class Outcome(StrEnum):
    SUCCESS = "success"  # fires success_transition
    FAILURE = "failure"  # fires fail_transition
    UNCHANGED = "unchanged"  # nothing to report; fires nothing
    ERROR = "error"  # the check itself could not run; fires fail_transition


@dataclass(frozen=True)
class WatcherResult:
    outcome: Outcome
    detail: str = ""
    data: Mapping[str, Any] | None = None  # merged into the machine's data
    data_removed: tuple[str, ...] = ()  # keys removed from the machine's data (after the merge)
    payload: Mapping[str, Any] = field(default_factory=dict)  # type-specific state
    # a transition named by the result (nagios: OK, WARNING, ...): fired instead of the
    # outcome's success/fail transition when the machine defines it
    transition: str | None = None


class MachineHandle(Protocol):
    """The part of a running machine a watcher may see."""

    @property
    def name(self) -> str: ...

    @property
    def directory(self) -> Path: ...

    @property
    def state(self) -> str: ...

    @property
    def state_version(self) -> int: ...

    def data_snapshot(self) -> dict[str, Any]: ...

    def submit_result(self, watcher: Watcher, result: WatcherResult, version: int) -> None: ...


class WatcherProperties(Protocol):
    """A watcher type's typed properties; ``parse`` reports problems through ``fields``."""

    @classmethod
    def parse(cls, fields: Fields) -> Self: ...


class Watcher(ABC):
    """Base of every watcher type."""

    __slots__ = (
        "_pausing",
        "_task",
        "_woken",
        "active",
        "clock",
        "context",
        "last_duration",
        "last_result",
        "last_run_at",
        "machine",
        "rng",
        "runs",
        "spec",
    )

    TYPE: ClassVar[str]
    Properties: ClassVar[type[WatcherProperties]]
    # interval used when the definition sets none (None: run only on activation)
    default_interval: ClassVar[float | None] = None
    # restart (and run at once) on every state entry it matches, not only when newly active
    restart_on_state_entry: ClassVar[bool] = False
    # False for a type that never reports success (timer): success_transition is refused
    fires_success: ClassVar[bool] = True

    def __init__(self, spec: WatcherSpec, machine: MachineHandle, context: WatcherContext) -> None:
        self.spec = spec
        self.machine = machine
        self.context = context
        self.clock = context.clock
        self.rng = context.rng
        self.active = False
        self.runs = 0
        self.last_result: WatcherResult | None = None
        self.last_run_at: float | None = None  # wall clock, when the last check finished
        self.last_duration: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._woken = False  # wake(): run the check now, not at the end of the interval
        self._pausing: asyncio.Future[None] | None = None  # set while _pause waits

    # the one thing a type implements ---------------------------------------------------------
    @abstractmethod
    async def check(self) -> WatcherResult:
        """Observe once. Cancellation must clean up (kill processes, close handles)."""

    def data_changed(self, keys: frozenset[str]) -> None:
        """The machine's data under ``keys`` changed (another watcher wrote it); a type that
        reads the data (``machines``, ``plugins``) wakes to look at it now."""
        return

    def announces(self, result: WatcherResult) -> bool:
        """Whether this result may be published as the watcher's state event."""
        return True

    # lifecycle, driven by the machine -----------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def interval(self) -> float | None:
        return self.spec.interval if self.spec.interval is not None else self.default_interval

    def activate(self) -> None:
        """Become active: run at once, then on the interval."""
        self.active = True
        self._replace_task(self._loop())

    def deactivate(self) -> None:
        """Stop being active; a running check is cancelled."""
        self.active = False
        self._replace_task(None)

    def wake(self) -> None:
        """Run the check now instead of at the end of the interval (an engine event, say).

        Wake-ups coalesce: any number before the next run cause one run; one that arrives
        while a check runs causes one more run right after it. No effect while inactive. A
        watcher without an interval (it ran once when it became active) runs once more.
        """
        self._woken = True
        if self._pausing is not None:
            _release(self._pausing)
        elif self.active and (self._task is None or self._task.done()):
            self._replace_task(self._loop())

    async def close(self) -> None:
        """Deactivate and wait until the running check has cleaned up."""
        self.active = False
        task, self._task = self._task, None
        if task is not None and not task.done():
            import asyncio

            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _replace_task(self, coro: Any) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        if coro is not None:
            import asyncio

            self._task = asyncio.get_running_loop().create_task(
                coro, name=f"watcher:{self.machine.name}/{self.name}"
            )

    async def _loop(self) -> None:
        import asyncio

        while True:
            started = self.clock.monotonic()
            self._woken = False
            await self._run_once(self.machine.state_version)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return  # a cancellation a library swallowed must still end the loop
            interval = self.interval
            if not interval:
                return
            elapsed = self.clock.monotonic() - started
            await self._pause(max(0.0, interval - elapsed))

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if ``wake()`` is called meanwhile.

        One future and one timer handle: no task, no Event (a pause per watcher per interval
        is the daemon's most frequent wait).
        """
        if self._woken:
            return
        import asyncio

        pausing = self._pausing = asyncio.get_running_loop().create_future()
        timer = self.clock.call_later(seconds, functools.partial(_release, pausing))
        try:
            await pausing
        finally:
            timer.cancel()
            self._pausing = None

    async def _run_once(self, version: int) -> None:
        import asyncio

        started = self.clock.monotonic()
        try:
            result = await self.check()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken check must never take the machine down
            import logging

            logging.getLogger("steward.watcher").exception(
                "watcher check crashed",
                extra={"machine": self.machine.name, "watcher": self.name},
            )
            result = WatcherResult(Outcome.ERROR, f"check crashed: {type(exc).__name__}: {exc}")
        self._ran(result, version, started)

    def _ran(self, result: WatcherResult, version: int, started: float) -> None:
        """A check that began at ``started`` (monotonic) in state version ``version`` ended
        with ``result``: count it and hand the result to the machine."""
        self.runs += 1
        self.last_duration = self.clock.monotonic() - started
        self.last_run_at = self.clock.time()
        self.last_result = result
        self.machine.submit_result(self, result, version)

    def status(self) -> dict[str, Any]:
        last = self.last_result
        return {
            "name": self.name,
            "type": self.TYPE,
            "active": self.active,
            "runs": self.runs,
            "last_outcome": last.outcome.value if last else None,
            "last_detail": last.detail if last else None,
            "last_run_at": self.last_run_at,
            "last_duration": self.last_duration,
            "interval": self.interval,
            "state": dict(last.payload) if last else {},
        }


def _release(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
