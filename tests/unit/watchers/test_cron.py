"""Cron windows as a pure function of (schedules, duration, zone, now): no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from steward.watchers.cron import Window, Windows, cron_expression

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def windows(*exprs: str, minutes: float = 60, tz: ZoneInfo | None = None) -> Windows:
    return Windows(
        tuple(cron_expression(e) for e in exprs), timedelta(minutes=minutes), tz or ZoneInfo("UTC")
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_open_inside_a_window_closed_outside() -> None:
    w = windows("0 2 * * *", minutes=30)
    assert w.window_at(utc(2024, 5, 1, 1, 59)) == Window(False, utc(2024, 5, 1, 2, 0))
    assert w.window_at(utc(2024, 5, 1, 2, 0)) == Window(True, utc(2024, 5, 1, 2, 30))
    assert w.window_at(utc(2024, 5, 1, 2, 29, 59)) == Window(True, utc(2024, 5, 1, 2, 30))
    assert w.window_at(utc(2024, 5, 1, 2, 30)) == Window(False, utc(2024, 5, 2, 2, 0))


def test_started_mid_window() -> None:
    w = windows("@daily", minutes=120)
    assert w.window_at(utc(2024, 5, 1, 1, 15, 30, 123)) == Window(True, utc(2024, 5, 1, 2, 0))


def test_macros() -> None:
    now = utc(2024, 5, 15, 10, 30)
    assert windows("@hourly").next_open(now) == utc(2024, 5, 15, 11, 0)
    assert windows("@daily").next_open(now) == utc(2024, 5, 16, 0, 0)
    assert windows("@weekly").next_open(now) == utc(2024, 5, 19, 0, 0)  # a Sunday
    assert windows("@monthly").next_open(now) == utc(2024, 6, 1, 0, 0)
    assert windows("@yearly").next_open(now) == utc(2025, 1, 1, 0, 0)


def test_names_ranges_and_steps() -> None:
    w = windows("*/20 22-23 * JAN,DEC SAT,SUN", minutes=5)
    assert w.next_open(utc(2024, 12, 20, 12, 0)) == utc(2024, 12, 21, 22, 0)  # Saturday
    assert w.next_open(utc(2024, 12, 21, 22, 5)) == utc(2024, 12, 21, 22, 20)
    assert w.next_open(utc(2024, 12, 22, 23, 41)) == utc(2024, 12, 28, 22, 0)


def test_month_ends() -> None:
    w = windows("0 0 31 * *", minutes=60)
    assert w.next_open(utc(2024, 4, 1)) == utc(2024, 5, 31)  # April has 30 days
    w = windows("0 0 L * *", minutes=60)
    assert w.next_open(utc(2023, 2, 1)) == utc(2023, 2, 28)


def test_leap_days() -> None:
    w = windows("0 12 29 FEB *", minutes=60)
    assert w.next_open(utc(2024, 3, 1)) == utc(2028, 2, 29, 12)
    assert w.window_at(utc(2024, 2, 29, 12, 30)) == Window(True, utc(2024, 2, 29, 13))
    assert w.window_at(utc(2025, 6, 1)) == Window(False, utc(2028, 2, 29, 12))


def test_a_window_spanning_the_year_end() -> None:
    w = windows("30 23 31 12 *", minutes=60)
    assert w.window_at(utc(2025, 1, 1, 0, 15)) == Window(True, utc(2025, 1, 1, 0, 30))


def test_overlapping_windows_extend() -> None:
    w = windows("0 * * * *", minutes=90)  # every hour for 90 minutes: never closes
    state = w.window_at(utc(2024, 5, 1, 3, 0))
    assert state.open
    assert state.until - utc(2024, 5, 1, 3, 0) > timedelta(days=300)
    w = windows("0 1 * * *", "30 1 * * *", minutes=45)  # 01:00-01:45 and 01:30-02:15
    assert w.window_at(utc(2024, 5, 1, 1, 10)) == Window(True, utc(2024, 5, 1, 2, 15))
    assert w.window_at(utc(2024, 5, 1, 1, 50)) == Window(True, utc(2024, 5, 1, 2, 15))
    assert w.window_at(utc(2024, 5, 1, 2, 15)) == Window(False, utc(2024, 5, 2, 1, 0))


def test_back_to_back_windows_do_not_close_in_between() -> None:
    w = windows("0 1 * * *", "0 2 * * *", minutes=60)
    assert w.window_at(utc(2024, 5, 1, 1, 30)) == Window(True, utc(2024, 5, 1, 3, 0))


def test_timezone_is_wall_clock() -> None:
    w = windows("0 2 * * *", minutes=60, tz=BERLIN)
    assert w.next_open(utc(2024, 1, 10)) == utc(2024, 1, 10, 1)  # CET, UTC+1
    assert w.next_open(utc(2024, 7, 9, 23)) == utc(2024, 7, 10, 0)  # CEST, UTC+2


def test_dst_spring_forward_runs_a_skipped_time_after_the_jump() -> None:
    # Berlin 2024-03-31: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day
    w = windows("30 2 * * *", minutes=60, tz=BERLIN)
    assert w.next_open(utc(2024, 3, 30, 23)) == utc(2024, 3, 31, 1)  # 03:00 CEST
    assert w.window_at(utc(2024, 3, 31, 1, 30)) == Window(True, utc(2024, 3, 31, 2))
    assert w.next_open(utc(2024, 3, 31, 2)) == utc(2024, 4, 1, 0, 30)  # 02:30 CEST
    # New York 2024-03-10: 02:00 EST jumps to 03:00 EDT
    ny = windows("15 2 * * *", minutes=30, tz=NEW_YORK)
    assert ny.next_open(utc(2024, 3, 10, 5)) == utc(2024, 3, 10, 7)  # 03:00 EDT


def test_dst_spring_forward_window_lasts_its_duration() -> None:
    # 01:30 CET + 2h of elapsed time = 04:30 CEST (the wall clock skips an hour)
    w = windows("30 1 * * *", minutes=120, tz=BERLIN)
    assert w.window_at(utc(2024, 3, 31, 1)) == Window(True, utc(2024, 3, 31, 2, 30))


def test_dst_fall_back_runs_a_repeated_time_once() -> None:
    # Berlin 2024-10-27: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
    w = windows("30 2 * * *", minutes=20, tz=BERLIN)
    assert w.next_open(utc(2024, 10, 26, 22)) == utc(2024, 10, 27, 0, 30)  # first 02:30
    assert w.window_at(utc(2024, 10, 27, 1, 35)) == Window(False, utc(2024, 10, 28, 1, 30))
    ny = windows("30 1 * * *", minutes=20, tz=NEW_YORK)  # 2024-11-03: 01:30 twice
    assert ny.next_open(utc(2024, 11, 3, 4)) == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    assert ny.next_open(utc(2024, 11, 3, 5, 31)) == utc(2024, 11, 4, 6, 30)


def test_dst_fall_back_hourly_runs_every_elapsed_hour() -> None:
    w = windows("@hourly", minutes=10, tz=BERLIN)
    starts = []
    t = utc(2024, 10, 26, 23, 30)
    for _ in range(4):
        t = w.next_open(t)
        starts.append(t)
    assert starts == [utc(2024, 10, 27, h) for h in range(4)]


def test_dst_fall_back_window_lasts_its_duration() -> None:
    # 01:30 CEST + 2h of elapsed time = 02:30 CET (the wall clock repeats an hour)
    w = windows("30 1 * * *", minutes=120, tz=BERLIN)
    assert w.window_at(utc(2024, 10, 27, 1)) == Window(True, utc(2024, 10, 27, 1, 30))


def test_the_function_is_pure() -> None:
    w = windows("*/5 * * * *", minutes=1)
    now = utc(2024, 5, 1, 0, 2)
    assert w.window_at(now) == w.window_at(now) == Window(False, utc(2024, 5, 1, 0, 5))
    assert w.window_at(now.astimezone(NEW_YORK)) == w.window_at(now)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", "invalid cron expression '61 * * * *': Bad minute"),
        ("0 0 * * FUNDAY", "invalid cron expression '0 0 * * FUNDAY': Bad day-of-week"),
        ("0 0 30 2 *", "invalid cron expression '0 0 30 2 *': Bad day-of-month"),
        (
            "0 0 * *",
            "'0 0 * *' must have 5 fields (minute hour day-of-month month day-of-week), not 4",
        ),
        (
            "0 0 0 * * *",
            "'0 0 0 * * *' must have 5 fields (minute hour day-of-month month day-of-week), not 6",
        ),
        (
            "@fortnightly",
            "unknown macro '@fortnightly' (known: @yearly, @annually, @monthly, "
            "@weekly, @daily, @midnight, @hourly)",
        ),
    ],
)
def test_bad_expressions_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        cron_expression(text)
    assert str(caught.value) == message
