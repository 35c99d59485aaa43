"""Machine state on disk: one SQLite database in the state dir.

Each machine has one row: its state, since when, its data and its transition sequence
number. A transition is one SQL transaction that moves the state and bumps ``seq`` together,
so a crash leaves either the old or the new state, never a mix, and ``seq`` never repeats.
All SQLite calls run on one dedicated thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from steward.errors import StoreError

T = TypeVar("T")

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS machines (
    name     TEXT PRIMARY KEY,
    version  TEXT NOT NULL,
    state    TEXT NOT NULL,
    since    REAL NOT NULL,
    seq      INTEGER NOT NULL DEFAULT 0,
    data     TEXT NOT NULL DEFAULT '{}',
    updated  REAL NOT NULL
);
"""


@dataclass(frozen=True)
class SavedMachine:
    name: str
    version: str
    state: str
    since: float
    seq: int
    data: dict[str, Any]


@dataclass(frozen=True)
class TransitionRecord:
    machine: str
    version: str
    transition: str
    from_state: str
    to_state: str
    seq: int
    at: float


class MachineStore(Protocol):
    """What a running machine needs from persistence."""

    async def load(self, name: str) -> SavedMachine | None: ...

    async def save(self, saved: SavedMachine) -> None: ...

    async def record_transition(self, record: TransitionRecord) -> None: ...

    async def save_data(self, name: str, data: dict[str, Any], at: float) -> None: ...


class SqliteStore:
    """The SQLite-backed MachineStore. ``open()`` before use, ``close()`` after."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="steward-store")
        await self._call(self._open)

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._call(self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError("state store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    # runs on the store thread ---------------------------------------------------------------
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            db.close()
            raise StoreError(
                f"state database {self.path} has schema {version}, newer than this steward "
                f"({SCHEMA_VERSION}); upgrade steward or move the file away"
            )
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("state store is not open")
        return self._db

    # the MachineStore interface --------------------------------------------------------------
    async def load(self, name: str) -> SavedMachine | None:
        def q() -> SavedMachine | None:
            row = (
                self._conn()
                .execute(
                    "SELECT name, version, state, since, seq, data FROM machines WHERE name=?",
                    (name,),
                )
                .fetchone()
            )
            if row is None:
                return None
            try:
                data = json.loads(row[5])
            except ValueError:
                data = {}
            return SavedMachine(row[0], row[1], row[2], row[3], row[4], data)

        return await self._call(q)

    async def save(self, saved: SavedMachine) -> None:
        def q() -> None:
            self._conn().execute(
                "INSERT INTO machines(name, version, state, since, seq, data, updated) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                "version=excluded.version, state=excluded.state, since=excluded.since, "
                "seq=excluded.seq, data=excluded.data, updated=excluded.updated",
                (
                    saved.name,
                    saved.version,
                    saved.state,
                    saved.since,
                    saved.seq,
                    json.dumps(saved.data),
                    saved.since,
                ),
            )

        await self._call(q)

    async def record_transition(self, record: TransitionRecord) -> None:
        def q() -> None:
            db = self._conn()
            with _transaction(db):
                cur = db.execute(
                    "UPDATE machines SET state=?, since=?, seq=?, version=?, updated=? "
                    "WHERE name=? AND seq<?",
                    (
                        record.to_state,
                        record.at,
                        record.seq,
                        record.version,
                        record.at,
                        record.machine,
                        record.seq,
                    ),
                )
                if cur.rowcount != 1:
                    raise StoreError(
                        f"machine {record.machine!r}: stored seq is already {record.seq} or "
                        "higher, or the machine is missing; another writer changed the database"
                    )

        await self._call(q)

    async def save_data(self, name: str, data: dict[str, Any], at: float) -> None:
        def q() -> None:
            self._conn().execute(
                "UPDATE machines SET data=?, updated=? WHERE name=?", (json.dumps(data), at, name)
            )

        await self._call(q)

    async def integrity_check(self) -> str:
        def q() -> str:
            return str(self._conn().execute("PRAGMA integrity_check").fetchone()[0])

        return await self._call(q)


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
