"""The SQLite state store: what a transition writes, and what a restart reads back."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from steward.errors import StoreError
from steward.machine.history import Cause, HistoryEntry
from steward.machine.persistence import SavedMachine, SqliteStore, TransitionRecord

MANUAL = Cause.manual()
EXEC_FAILED = Cause(
    "watcher",
    "watcher check",
    watcher="check",
    watcher_type="exec",
    outcome="failure",
    detail="exit code 2: disk full",
    result={"exit_code": 2, "stdout": "", "stderr": "disk full\n"},
)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SqliteStore(tmp_path / "state" / "steward.db")
    await s.open()
    yield s
    await s.close()


async def test_unknown_machine_loads_as_none(store: SqliteStore) -> None:
    assert await store.load("nope") is None


async def test_transition_moves_state_and_seq_together(store: SqliteStore, tmp_path: Path) -> None:
    await store.save(SavedMachine("m", "1.0.0", "a", 10.0, 0, {}))
    await store.record_transition(TransitionRecord("m", "1.0.0", "up", "a", "b", 1, 11.0, MANUAL))
    await store.save_data("m", {"k": [1, 2]}, 12.0)
    await store.close()
    reopened = SqliteStore(tmp_path / "state" / "steward.db")
    await reopened.open()
    try:
        assert await reopened.load("m") == SavedMachine("m", "1.0.0", "b", 11.0, 1, {"k": [1, 2]})
        assert await reopened.integrity_check() == "ok"
    finally:
        await reopened.close()
    await store.open()  # the fixture closes it again


async def test_seq_never_goes_back(store: SqliteStore) -> None:
    await store.save(SavedMachine("m", "1.0.0", "a", 10.0, 5, {}))
    with pytest.raises(StoreError, match="stored seq is already 5 or higher"):
        await store.record_transition(
            TransitionRecord("m", "1.0.0", "up", "a", "b", 5, 11.0, MANUAL)
        )
    saved = await store.load("m")
    assert saved is not None and (saved.state, saved.seq) == ("a", 5)


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "steward.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    s = SqliteStore(path)
    with pytest.raises(StoreError, match="schema 99, newer than this steward"):
        await s.open()
    await s.close()


async def test_calls_before_open_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not open"):
        await SqliteStore(tmp_path / "x.db").load("m")


# history ---------------------------------------------------------------------------------------
async def _flip(store: SqliteStore, machine: str, seqs: range, cause: Cause = MANUAL) -> None:
    """Transitions a <-> b with the given seqs (the row must exist)."""
    for seq in seqs:
        a, b = ("a", "b") if seq % 2 else ("b", "a")
        await store.record_transition(
            TransitionRecord(machine, "1.0.0", f"to_{b}", a, b, seq, 100.0 + seq, cause)
        )


async def test_history_keeps_each_transition_with_its_cause(store: SqliteStore) -> None:
    await store.save(SavedMachine("m", "1.0.0", "a", 10.0, 0, {}))
    await store.record_transition(TransitionRecord("m", "1.0.0", "up", "a", "b", 1, 11.0, MANUAL))
    await store.record_transition(
        TransitionRecord("m", "1.0.0", "down", "b", "a", 2, 12.0, EXEC_FAILED)
    )
    assert await store.history("m", 10) == [
        HistoryEntry(1, 11.0, "up", "a", "b", "1.0.0", MANUAL),
        HistoryEntry(2, 12.0, "down", "b", "a", "1.0.0", EXEC_FAILED),
    ]
    assert await store.history("other", 10) == []


async def test_history_is_bounded_per_machine_and_reads_the_newest(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "steward.db", history_keep=3)
    await s.open()
    try:
        for name in ("m", "n"):
            await s.save(SavedMachine(name, "1.0.0", "a", 10.0, 0, {}))
        await _flip(s, "m", range(1, 8))
        await _flip(s, "n", range(1, 3))
        assert [e.seq for e in await s.history("m", 100)] == [5, 6, 7]  # oldest first
        assert [e.seq for e in await s.history("m", 2)] == [6, 7]
        assert [e.seq for e in await s.history("n", 100)] == [1, 2]  # m's pruning spared n
        with closing(sqlite3.connect(s.path)) as db:
            (rows,) = db.execute("SELECT COUNT(*) FROM history").fetchone()
        assert rows == 5  # pruned on disk, not only when read
    finally:
        await s.close()


async def test_history_survives_reopen(store: SqliteStore, tmp_path: Path) -> None:
    await store.save(SavedMachine("m", "1.0.0", "a", 10.0, 0, {}))
    await _flip(store, "m", range(1, 4), EXEC_FAILED)
    await store.close()
    reopened = SqliteStore(tmp_path / "state" / "steward.db")
    await reopened.open()
    try:
        history = await reopened.history("m", 10)
        assert [(e.seq, e.to_state) for e in history] == [(1, "b"), (2, "a"), (3, "b")]
        assert all(e.cause == EXEC_FAILED for e in history)
    finally:
        await reopened.close()
    await store.open()


async def test_a_failed_transition_leaves_no_history(store: SqliteStore) -> None:
    await store.save(SavedMachine("m", "1.0.0", "a", 10.0, 5, {}))
    with pytest.raises(StoreError):
        await store.record_transition(
            TransitionRecord("m", "1.0.0", "up", "a", "b", 5, 11.0, MANUAL)
        )
    with pytest.raises(StoreError):  # no machine row: neither state nor history
        await store.record_transition(
            TransitionRecord("x", "1.0.0", "up", "a", "b", 1, 11.0, MANUAL)
        )
    assert await store.history("m", 10) == []
    assert await store.history("x", 10) == []


async def test_a_version_1_database_gains_the_history_table(tmp_path: Path) -> None:
    path = tmp_path / "steward.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE machines (name TEXT PRIMARY KEY, version TEXT NOT NULL,
            state TEXT NOT NULL, since REAL NOT NULL, seq INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL DEFAULT '{}', updated REAL NOT NULL);
        CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
            machine TEXT NOT NULL, subject TEXT NOT NULL, body BLOB NOT NULL);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO machines VALUES ('m', '1.0.0', 'b', 10.0, 7, '{"k": 1}', 10.0);
        PRAGMA user_version=1;
        """
    )
    db.close()
    s = SqliteStore(path)
    await s.open()
    try:
        assert await s.load("m") == SavedMachine("m", "1.0.0", "b", 10.0, 7, {"k": 1})
        assert await s.history("m", 10) == []
        await s.record_transition(TransitionRecord("m", "1.0.0", "down", "b", "a", 8, 11.0, MANUAL))
        assert [e.seq for e in await s.history("m", 10)] == [8]
    finally:
        await s.close()
    with closing(sqlite3.connect(path)) as db:
        (version,) = db.execute("PRAGMA user_version").fetchone()
    assert version == 1  # an older steward still opens it


async def test_many_machines_load_and_save_in_one_call_each(store: SqliteStore) -> None:
    rows = [SavedMachine(f"m{i}", "1.0.0", "a", 10.0 + i, i, {"i": i}) for i in range(3)]
    await store.save_many(rows)
    commits = store.commits
    await store.save_many([SavedMachine("m1", "1.0.0", "b", 20.0, 0, {})])  # seq 0 < 1: kept
    assert store.commits == commits + 1
    found = await store.load_many(["m0", "m1", "m2", "nope"])
    assert found == {row.name: row for row in rows}
    for row in rows:
        assert await store.load(row.name) == row


async def test_many_histories_in_one_call(store: SqliteStore) -> None:
    await store.save_many([SavedMachine(n, "1.0.0", "a", 0.0, 0, {}) for n in ("x", "y", "z")])
    for seq in range(1, 4):
        state = "b" if seq % 2 else "a"
        await store.record_transition(
            TransitionRecord("x", "1.0.0", "t", "a", state, seq, float(seq), MANUAL)
        )
    await store.record_transition(TransitionRecord("y", "1.0.0", "t", "a", "b", 1, 9.0, MANUAL))
    found = await store.history_many(["x", "y", "z"], 2)
    assert sorted(found) == ["x", "y"]  # z has none
    assert [e.seq for e in found["x"]] == [2, 3]  # the newest two, oldest first
    assert found["x"] == await store.history("x", 2)
    assert found["y"] == await store.history("y", 2)
