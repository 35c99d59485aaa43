"""The SQLite state store: what a transition writes, and what a restart reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.errors import StoreError
from steward.machine.persistence import SavedMachine, SqliteStore, TransitionRecord


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
    await store.record_transition(TransitionRecord("m", "1.0.0", "up", "a", "b", 1, 11.0))
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
        await store.record_transition(TransitionRecord("m", "1.0.0", "up", "a", "b", 5, 11.0))
    saved = await store.load("m")
    assert saved is not None and (saved.state, saved.seq) == ("a", 5)


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

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
