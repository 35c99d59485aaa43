"""Cron windows: when is a schedule open? A pure function of (schedules, duration, zone, now).

Each cron expression opens a window of ``duration`` at every time it matches, in the zone's
wall-clock time; the duration is elapsed time, so a window that spans a DST change lasts
exactly ``duration``. Overlapping windows (from one expression or several) merge into one
that stays open until the last of them closes. Times that a DST jump skips or repeats
follow Debian cron, as the cron library (cronsim) does: a job in the skipped hour runs at
the first valid minute after it, a fixed-time job in the repeated hour runs once.

Everything here takes ``now`` as an aware datetime and returns aware UTC datetimes.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# windows chained further than this are reported open until the horizon, then looked at again
HORIZON = timedelta(days=400)
MAX_CHAIN = 10_000


def cron_expression(text: str) -> str:
    """The 5-field expression for ``text`` (a macro is expanded); ValueError if invalid."""
    expr = MACROS.get(text.strip().lower(), text.strip())
    if expr.startswith("@"):
        raise ValueError(f"unknown macro {text!r} (known: {', '.join(MACROS)})")
    if len(expr.split()) != 5:
        raise ValueError(
            f"{text!r} must have 5 fields (minute hour day-of-month month day-of-week), "
            f"not {len(expr.split())}"
        )
    try:
        next(CronSim(expr, datetime(2000, 1, 1)))
    except (CronSimError, StopIteration) as exc:
        raise ValueError(f"invalid cron expression {text!r}: {exc or 'never matches'}") from exc
    return expr


def zone(name: str) -> tzinfo:
    """An IANA time zone; ValueError naming it if there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from exc


@functools.cache
def local_zone() -> tzinfo:
    """The node's zone: ``TZ`` if it names one, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with Path("/etc/localtime").open("rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


@dataclass(frozen=True)
class Window:
    open: bool
    until: datetime  # open: when the (merged) window closes; closed: when the next one opens


@dataclass(frozen=True)
class Windows:
    expressions: tuple[str, ...]  # 5-field cron expressions (macros expanded)
    duration: timedelta
    tz: tzinfo

    def window_at(self, now: datetime) -> Window:
        """Whether a window is open at ``now``, and until when that holds."""
        now = now.astimezone(UTC)
        end: datetime | None = None
        for expr in self.expressions:
            last = self._last_start(expr, now)
            if last is not None and last + self.duration > now:
                end = max(end or now, last + self.duration)
        if end is None:
            return Window(False, self.next_open(now))
        return Window(True, self._extend(now, end))

    def next_open(self, now: datetime) -> datetime:
        """The first window start strictly after ``now``."""
        now = now.astimezone(UTC)
        return min(self._next_start(expr, now) for expr in self.expressions)

    def _extend(self, now: datetime, end: datetime) -> datetime:
        """Follow windows that start before ``end``: overlapping windows merge."""
        t = now
        for _ in range(MAX_CHAIN):
            start = self.next_open(t)
            if start > end or end - now > HORIZON:
                return end
            end, t = max(end, start + self.duration), start
        return end

    def _last_start(self, expr: str, now: datetime) -> datetime | None:
        local = now.astimezone(self.tz).replace(microsecond=0) + timedelta(seconds=1)
        for start in CronSim(expr, local, reverse=True):
            start = start.astimezone(UTC)
            if start <= now:
                return start
        return None

    def _next_start(self, expr: str, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        for start in CronSim(expr, local):
            start = start.astimezone(UTC)
            if start > now:
                return start
        raise ValueError(f"{expr!r} never matches again")  # validated: cannot happen
