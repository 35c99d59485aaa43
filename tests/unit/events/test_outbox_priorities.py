"""An overflowing outbox drops the lowest priority first: announcements, then lifecycle events,
and a transition only when nothing else is left; counted per kind, across restarts."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from steward.events.envelope import Envelope, EventKind, LifecycleStep
from steward.events.formats import StewardFormat
from steward.events.outbox import OutboxLimits, Priority, priority_of
from steward.machine.persistence import SqliteStore

AT = 1_700_000_000.25
FORMAT = StewardFormat("n")


def transition(seq: int, machine: str = "web") -> Envelope:
    return FORMAT.transition(
        machine=machine,
        version="1.0.0",
        instance="i",
        transition="up",
        from_state="a",
        to_state="b",
        seq=seq,
        at=AT,
        cause="manual",
    )


def announcement(machine: str = "web") -> Envelope:
    return FORMAT.watcher(
        machine=machine,
        version="1.0.0",
        instance="i",
        watcher="probe",
        watcher_type="exec",
        state="b",
        outcome="success",
        detail="exit code 0",
        payload={"exit_code": 0},
        at=AT,
    )


def lifecycle(machine: str = "web") -> Envelope:
    return FORMAT.lifecycle(
        machine=machine, version="1.0.0", instance="i", step=LifecycleStep.STARTED, at=AT
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "steward.db", OutboxLimits(max_events=6, max_bytes=1 << 20))
    await s.open()
    yield s
    await s.close()


async def kept(store: SqliteStore) -> list[str]:
    return [r.event_id for r in await store.outbox_peek(100)]


def test_transitions_rank_above_lifecycle_above_announcements() -> None:
    assert priority_of(EventKind.TRANSITION) is Priority.TRANSITION
    assert priority_of(EventKind.LIFECYCLE) is Priority.LIFECYCLE
    assert priority_of(EventKind.WATCHER) is Priority.ANNOUNCEMENT
    assert Priority.ANNOUNCEMENT < Priority.LIFECYCLE < Priority.TRANSITION


async def test_announcements_go_first_oldest_first(store: SqliteStore) -> None:
    t1, a1, life, a2, t2, a3 = (
        transition(1),
        announcement(),
        lifecycle(),
        announcement(),
        transition(2),
        announcement(),
    )
    await store.append_events([t1, a1, life, a2, t2, a3])  # exactly full
    t3, t4 = transition(3), transition(4)
    await store.append_events([t3])
    await store.append_events([t4])
    # the two oldest announcements went; order of what is left is unchanged
    assert await kept(store) == [t1.id, life.id, t2.id, a3.id, t3.id, t4.id]
    stats = await store.outbox_stats()
    assert (stats.events, stats.dropped, dict(stats.dropped_by_kind)) == (6, 2, {"watcher": 2})


async def test_lifecycle_goes_after_announcements_and_before_any_transition(
    store: SqliteStore,
) -> None:
    life1, a1, life2 = lifecycle(), announcement(), lifecycle()
    transitions = [transition(i) for i in range(1, 4)]
    await store.append_events([life1, a1, life2, *transitions])
    more = [transition(i) for i in range(4, 7)]
    await store.append_events(more)
    assert await kept(store) == [e.id for e in [*transitions, *more]]
    stats = await store.outbox_stats()
    assert dict(stats.dropped_by_kind) == {"watcher": 1, "lifecycle": 2}


async def test_a_transition_is_dropped_only_when_nothing_else_is_left(store: SqliteStore) -> None:
    transitions = [transition(i) for i in range(1, 7)]
    await store.append_events(transitions)
    late = announcement()
    await store.append_events([late])  # the newest, but the only one of the lowest priority
    assert await kept(store) == [e.id for e in transitions]
    t7 = transition(7)
    await store.append_events([t7])  # nothing else left: the oldest transition goes
    assert await kept(store) == [e.id for e in [*transitions[1:], t7]]
    stats = await store.outbox_stats()
    assert dict(stats.dropped_by_kind) == {"watcher": 1, "transition": 1}


async def test_the_byte_bound_drops_by_priority_too(tmp_path: Path) -> None:
    size = len(transition(1).body) + len(announcement().body) * 4
    s = SqliteStore(tmp_path / "b.db", OutboxLimits(max_events=1000, max_bytes=size))
    await s.open()
    try:
        first = [transition(1), *(announcement() for _ in range(4))]
        await s.append_events(first)
        t2 = transition(2)
        await s.append_events([t2])
        ids = await kept(s)
        assert ids[0] == first[0].id and ids[-1] == t2.id
        stats = await s.outbox_stats()
        assert stats.bytes <= size
        assert stats.dropped_by_kind.get("watcher", 0) >= 1
        assert "transition" not in stats.dropped_by_kind
    finally:
        await s.close()


async def test_counts_per_kind_survive_a_restart(store: SqliteStore, tmp_path: Path) -> None:
    await store.append_events([announcement() for _ in range(3)])
    await store.append_events([transition(i) for i in range(1, 6)])
    await store.close()
    reopened = SqliteStore(tmp_path / "steward.db", OutboxLimits(max_events=6))
    await reopened.open()
    try:
        stats = await reopened.outbox_stats()
        assert (stats.events, stats.dropped, dict(stats.dropped_by_kind)) == (6, 2, {"watcher": 2})
    finally:
        await reopened.close()
    await store.open()


async def test_a_version_1_outbox_gains_kind_and_priority_its_rows_kept_highest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "steward.db"
    old = [transition(1), announcement(), lifecycle()]
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            """
            CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
                machine TEXT NOT NULL, subject TEXT NOT NULL, body BLOB NOT NULL);
            CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT INTO counters VALUES ('outbox_dropped', 4);
            PRAGMA user_version=1;
            """
        )
        db.executemany(
            "INSERT INTO outbox(event_id, machine, subject, body) VALUES (?,?,?,?)",
            [(e.id, e.machine, e.subject, e.body) for e in old],
        )
        db.commit()
    s = SqliteStore(path, OutboxLimits(max_events=4))
    await s.open()
    try:
        stats = await s.outbox_stats()
        assert (stats.events, stats.dropped, dict(stats.dropped_by_kind)) == (3, 4, {})
        fresh = [announcement(), transition(2)]
        await s.append_events(fresh)
        # the new announcement is the only row below the top priority: it goes first
        assert await kept(s) == [*(e.id for e in old), fresh[1].id]
    finally:
        await s.close()
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT kind, priority FROM outbox ORDER BY id").fetchall()
    assert rows == [
        ("transition", Priority.TRANSITION),
        ("watcher", Priority.TRANSITION),
        ("lifecycle", Priority.TRANSITION),
        ("transition", Priority.TRANSITION),
    ]
