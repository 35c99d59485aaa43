"""Draining a backlog: the pace (a token bucket that halves on overload and recovers), the
jitter before it starts, what counts as overload, and the outbox queries that let live
events go ahead of a backlog without reordering any machine's events."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js.errors import APIError

from steward.events.drain import DrainPace, DrainSettings, is_overload
from steward.events.envelope import Envelope
from steward.events.formats import StewardFormat
from steward.events.outbox import OutboxLimits
from steward.machine.persistence import SqliteStore
from tests.support.fakes import FakeClock

FORMAT = StewardFormat("n")


def pace(rate: int = 100, jitter: float = 5.0) -> tuple[DrainPace, FakeClock]:
    clock = FakeClock()
    return DrainPace(DrainSettings(rate, jitter), clock=clock, rng=random.Random(3)), clock


def test_a_second_of_burst_then_the_rate() -> None:
    p, clock = pace(rate=100)
    assert p.wait_for(100) == 0.0  # one second's worth at once
    assert p.wait_for(50) == pytest.approx(0.5)
    clock.now += 0.5
    assert p.wait_for(25) == pytest.approx(0.25)
    clock.now += 10
    assert p.wait_for(100) == 0.0  # the bucket holds one second, not ten


def test_overload_halves_the_rate_and_batches_that_go_through_recover_it() -> None:
    p, _ = pace(rate=100)
    p.overloaded()
    p.overloaded()
    assert p.rate == 25
    for _ in range(3):
        p.went_through()
    assert p.rate == 55
    for _ in range(10):
        p.went_through()
    assert p.rate == 100  # never above the configured rate
    for _ in range(20):
        p.overloaded()
    assert p.rate == 1.0


def test_the_start_of_a_big_backlog_is_jittered_within_the_bound() -> None:
    p, _ = pace(rate=100, jitter=5.0)
    delays = [p.start_delay(101) for _ in range(200)]
    assert all(0 <= d <= 5.0 for d in delays)
    assert max(delays) - min(delays) > 3.0  # spread, not one value
    assert pace(jitter=0)[0].start_delay(10_000) == 0.0


def test_a_backlog_within_one_seconds_burst_starts_at_once() -> None:
    # it adds no more than the rate allows anyway, and its machines' live events wait on it
    p, _ = pace(rate=100, jitter=5.0)
    assert {p.start_delay(n) for n in (1, 10, 100)} == {0.0}


def test_what_counts_as_overload() -> None:
    assert is_overload(APIError(code=429, description="too many requests"))
    assert is_overload(APIError(code=503, description="JetStream system temporarily unavailable"))
    assert is_overload(Exception("nats: slow consumer, messages dropped"))
    assert not is_overload(TimeoutError())
    assert not is_overload(APIError(code=404, description="stream not found"))


# the outbox side ------------------------------------------------------------------------------
def event(machine: str, seq: int) -> Envelope:
    return FORMAT.transition(
        machine=machine,
        version="1",
        instance="i",
        transition="t",
        from_state="a",
        to_state="b",
        seq=seq,
        at=1.0,
        cause="manual",
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "steward.db", OutboxLimits())
    await s.open()
    yield s
    await s.close()


async def test_live_events_of_machines_without_backlog_go_first(store: SqliteStore) -> None:
    backlog = [event("busy", 1), event("busy", 2), event("quiet", 1)]
    await store.append_events(backlog)
    upto = await store.outbox_last_rowid()
    live = [event("busy", 3), event("fresh", 1), event("quiet", 2)]
    await store.append_events(live)
    # busy and quiet still have a backlog: only fresh may go ahead
    assert [r.event_id for r in await store.outbox_peek_live(upto, 10)] == [live[1].id]
    assert [r.event_id for r in await store.outbox_peek(10, upto=upto)] == [e.id for e in backlog]
    # quiet's backlog is delivered: its live event may go now, busy's still waits
    quiet_row = (await store.outbox_peek(10, upto=upto))[2]
    await store.outbox_remove_rows([quiet_row.rowid])
    assert [r.event_id for r in await store.outbox_peek_live(upto, 10)] == [
        live[1].id,
        live[2].id,
    ]
    fresh = (await store.outbox_peek_live(upto, 1))[0]
    await store.outbox_remove_rows([fresh.rowid, fresh.rowid + 10_000])  # unknown ids: ignored
    stats = await store.outbox_stats()
    assert stats.events == 4
    assert stats.bytes == sum(len(e.body) for e in [*backlog[:2], live[0], live[2]])
