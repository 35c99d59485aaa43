"""timer: starts when the machine enters a matching state; fires fail_transition on expiry.

Leaving the matching states cancels it; entering another matching state restarts it.
With ``splay`` the timer runs for a random time between 0 and ``timer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult

TYPE = "timer"


@dataclass(frozen=True)
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

    @property
    def props(self) -> TimerProperties:
        p = self.spec.properties
        assert isinstance(p, TimerProperties)
        return p

    async def check(self) -> WatcherResult:
        duration = self.props.timer
        if self.props.splay:
            duration = self.rng.uniform(0, duration)
        payload = {"timer": duration, "state": self.machine.state}
        await self.clock.sleep(duration)
        return WatcherResult(Outcome.FAILURE, f"timer expired after {duration:g}s", payload=payload)
