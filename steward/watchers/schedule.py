"""schedule: success when a cron window opens, fail when the last open window closes.

Each of ``schedules`` (cron expressions, or ``@hourly``…``@yearly``) opens a window of
``duration`` in ``timezone`` (default: the node's local time); overlapping windows merge.
The first check after the watcher starts reports where things stand, as Choria does: inside
a window fires ``success_transition``, outside fires ``fail_transition`` (so a machine
resumed in its "window" state after the window closed leaves it). After that only changes
are reported, also when the machine moves between states the watcher matches. A machine
that leaves the watcher's states and comes back is told where things stand again, as Choria
does: a success again inside a window, unless ``skip_trigger_on_reenter`` is set and this
same window has already fired it. ``duration`` defaults to a minute, as in Choria.
``start_splay`` delays the success by a random time up to that long.

The check sleeps on the injected clock until the next boundary (at most ``MAX_SLEEP`` at a
time, so a wall-clock jump is noticed); the window maths is ``cron.Windows``. ``interval``
does not apply. The watcher restarts on every state entry, so a result it reports carries
the state the machine is in when the boundary passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.cron import Window, Windows, cron_expression, local_zone, zone

TYPE = "schedule"
MAX_SLEEP = 60.0  # seconds; the window is looked at again at least this often
MIN_SLEEP = 0.001
RECHECK = 0.001  # the base loop calls check() again at once; check() does the waiting
DEFAULT_DURATION = 60.0  # Choria's default window


@dataclass(frozen=True)
class ScheduleProperties:
    windows: Windows
    schedules: tuple[str, ...] = ()
    timezone: str = "local"
    start_splay: float = 0.0
    skip_trigger_on_reenter: bool = False

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        expressions: list[str] = []
        schedules = fields.strings("schedules", required=True)
        for text, pos in schedules:
            try:
                expressions.append(cron_expression(text))
            except ValueError as exc:
                fields.problems.add(pos, str(exc))
        duration = fields.duration("duration", minimum=1, minimum_text="1s")
        if duration is None and not fields.has("duration"):
            duration = DEFAULT_DURATION
        tz_name = fields.string("timezone")
        tz = local_zone()
        if tz_name is not None:
            try:
                tz = zone(tz_name)
            except ValueError as exc:
                fields.error("timezone", str(exc))
        splay = fields.duration("start_splay", minimum=0)
        if splay is not None and duration is not None and splay >= duration:
            fields.error("start_splay", "must be shorter than duration")
            splay = None
        props = cls(
            windows=Windows(tuple(expressions), timedelta(seconds=duration or 1), tz),
            schedules=tuple(text for text, _ in schedules),
            timezone=tz_name or "local",
            start_splay=splay or 0.0,
            skip_trigger_on_reenter=fields.boolean("skip_trigger_on_reenter", False),
        )
        fields.finish(" in schedule properties")
        return props


class ScheduleWatcher(Watcher):
    TYPE = TYPE
    Properties = ScheduleProperties
    restart_on_state_entry = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reported: bool | None = None  # the window state last reported
        self._fired: datetime | None = None  # the end of the window success last fired in

    @property
    def props(self) -> ScheduleProperties:
        p = self.spec.properties
        assert isinstance(p, ScheduleProperties)
        return p

    @property
    def interval(self) -> float | None:
        return RECHECK

    def deactivate(self) -> None:
        """Out of the watcher's states: on the way back, report where things stand again."""
        self._reported = None
        super().deactivate()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)

    async def check(self) -> WatcherResult:
        """Wait until the window state differs from the one last reported; report it."""
        while True:
            window = self.props.windows.window_at(self._now())
            if window.open != self._reported:
                if (
                    window.open
                    and self.props.skip_trigger_on_reenter
                    and (self._fired == window.until)
                ):
                    self._reported = True  # re-entered the window that already fired
                    continue
                if window.open and self.props.start_splay:
                    await self.clock.sleep(self.rng.uniform(0, self.props.start_splay))
                    window = self.props.windows.window_at(self._now())
                    if not window.open:
                        continue
                self._reported = window.open
                self._fired = window.until if window.open else None
                return self._result(window)
            wait = (window.until - self._now()).total_seconds()
            await self.clock.sleep(min(MAX_SLEEP, max(MIN_SLEEP, wait)))

    def _result(self, window: Window) -> WatcherResult:
        until = window.until.astimezone(self.props.windows.tz).isoformat()
        payload = {
            "open": window.open,
            "until": until,
            "schedules": list(self.props.schedules),
            "timezone": self.props.timezone,
        }
        if window.open:
            return WatcherResult(Outcome.SUCCESS, f"window open until {until}", payload=payload)
        return WatcherResult(Outcome.FAILURE, f"window closed until {until}", payload=payload)
