"""timer: starts when the machine enters a matching state; fires fail_transition on expiry.

Leaving the matching states cancels it; entering another matching state restarts it.
With ``splay`` the timer runs for a random time between 0 and ``timer``.

A running timer is one clock timer handle, not a task waiting in ``check()``: a node with
10,000 machines has 10,000 timers waiting, and a task with its coroutines costs ~2 KB each
(bench/timers_10k.py). The run is counted and reported exactly as the base's run loop does
(``Watcher._ran``). A timer with an ``interval`` (run again after it) keeps the base's loop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Self

from steward.clock import Cancellable
from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult

TYPE = "timer"


@dataclass(frozen=True, slots=True)
class TimerProperties:
    timer: float
    splay: bool = False

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        timer = fields.duration("timer", required=True, minimum=0.001, minimum_text="1ms")
        props = cls(timer=timer or 0.0, splay=fields.boolean("splay", False))
        fields.finish(" in timer properties")
        return props


class TimerWatcher(Watcher):
    TYPE = TYPE
    Properties = TimerProperties
    restart_on_state_entry = True
    fires_success = False

    __slots__ = ("_expiry",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._expiry: Cancellable | None = None  # the running timer (no interval)

    @property
    def props(self) -> TimerProperties:
        p = self.spec.properties
        assert isinstance(p, TimerProperties)
        return p

    async def check(self) -> WatcherResult:
        duration, payload = self._begin()
        await self.clock.sleep(duration)
        return _expired(duration, payload)

    def _begin(self) -> tuple[float, dict[str, Any]]:
        """This run's duration (splayed, if asked) and its state payload."""
        duration = self.props.timer
        if self.props.splay:
            duration = self.rng.uniform(0, duration)
        return duration, {"timer": duration, "state": self.machine.state}

    # one handle instead of the base's task, when the timer runs once per activation ---------
    def activate(self) -> None:
        if self.interval:
            super().activate()
            return
        self.active = True
        self._disarm()
        self._arm()

    def deactivate(self) -> None:
        self._disarm()
        super().deactivate()

    def wake(self) -> None:
        if self.interval:
            super().wake()
        elif self.active and self._expiry is None:  # ran out: run once more, as the base does
            self._arm()

    async def close(self) -> None:
        self._disarm()
        await super().close()

    def _arm(self) -> None:
        duration, payload = self._begin()
        started = self.clock.monotonic()
        version = self.machine.state_version
        self._expiry = self.clock.call_later(
            duration, functools.partial(self._fire, duration, payload, version, started)
        )

    def _disarm(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _fire(self, duration: float, payload: dict[str, Any], version: int, started: float) -> None:
        self._expiry = None
        self._ran(_expired(duration, payload), version, started)


def _expired(duration: float, payload: dict[str, Any]) -> WatcherResult:
    return WatcherResult(Outcome.FAILURE, f"timer expired after {duration:g}s", payload=payload)
