"""Machine state and the event outbox on disk: one SQLite database in the state dir.

Each machine has one row: its state, since when, its data and its transition sequence
number. A transition is one SQL transaction that moves the state, bumps ``seq``, adds the
transition with its cause to the machine's history and appends its event to the outbox
together, so a crash leaves either the old state and no event or the new state, its history
entry and its event, never a mix, and ``seq`` never repeats. History is bounded per machine
(``history_keep``): the same transaction deletes what falls out of it. A removed machine's
row and history stay (as its row always has), so it resumes where it was if it comes back.

The outbox holds events until NATS confirmed them, oldest first. It is bounded (events and
bytes); when a write would overflow it, events are dropped in the same transaction, lowest
priority first (``steward.events.outbox.Priority``: announcements, then lifecycle events,
then transitions), oldest first within a priority, and counted per kind (the counts survive
restarts).

All SQLite calls run on one dedicated thread, never on the event loop. Writes that arrive
together are committed together (group commit): each in its own savepoint, so one failing
write does not undo the others, and each caller is answered only after the COMMIT — durable
(``synchronous=FULL``) without one fsync per transition when many machines move at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from steward.errors import StoreError
from steward.events.envelope import Envelope
from steward.events.outbox import OutboxLimits, OutboxRow, OutboxStats, priority_of
from steward.machine.history import DEFAULT_HISTORY_KEEP, Cause, HistoryEntry

log = logging.getLogger("steward.store")

T = TypeVar("T")

# user_version changes only when an older steward could not use the database any more. Tables
# that only add (history) are created IF NOT EXISTS at every open: a version-1 database gains
# them, and an older steward still opens a database that has them (it ignores them).
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
CREATE TABLE IF NOT EXISTS outbox (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    machine  TEXT NOT NULL,
    subject  TEXT NOT NULL,
    body     BLOB NOT NULL,
    kind     TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL DEFAULT 2
);
CREATE TABLE IF NOT EXISTS counters (
    name     TEXT PRIMARY KEY,
    value    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    machine    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    at         REAL NOT NULL,
    transition TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    version    TEXT NOT NULL,
    cause      TEXT NOT NULL,
    PRIMARY KEY (machine, seq)
) WITHOUT ROWID;
"""
# Columns added to the outbox after version 1 (a version-1 database gains them at open; its rows
# are kept at the top priority, their kind read from their subject). An older steward still
# writes to the table: its rows get the defaults.
OUTBOX_COLUMNS = {
    "kind": "ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT ''",
    "priority": "ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 2",
}
OUTBOX_INDEXES = (
    "CREATE INDEX IF NOT EXISTS outbox_by_priority ON outbox(priority, id)",  # what to drop
    "CREATE INDEX IF NOT EXISTS outbox_by_machine ON outbox(machine, id)",  # live events first
)
KIND_FROM_SUBJECT = """
UPDATE outbox SET kind = CASE
    WHEN subject LIKE '%.transition' THEN 'transition'
    WHEN subject LIKE '%.lifecycle' THEN 'lifecycle'
    WHEN subject LIKE '%.watcher.%' THEN 'watcher'
    ELSE 'unknown' END
WHERE kind = ''
"""
_MAX_ROWID = (1 << 63) - 1
DROPPED = "outbox_dropped"  # counter: events dropped in all; per kind: "outbox_dropped:<kind>"
DROP_WARNING_EVERY = 10.0  # seconds between warnings while the outbox keeps overflowing
GROUP_COMMIT_MAX = 512  # writes committed together at most
WAL_PAGES = 256  # the WAL is checkpointed (and cut back) at this many pages
WAL_RELEASE_EVERY = 1.0  # seconds between WAL truncations while the disk is full


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
    cause: Cause

    def entry(self) -> HistoryEntry:
        """This transition as the machine's history keeps it."""
        return HistoryEntry(
            self.seq,
            self.at,
            self.transition,
            self.from_state,
            self.to_state,
            self.version,
            self.cause,
        )


@dataclass(frozen=True)
class LateWrite:
    """A write the store refused (a full disk), kept in memory to be written later, in order:
    a transition with its events, or events on their own (``record`` None)."""

    record: TransitionRecord | None
    events: tuple[Envelope, ...] = ()


class MachineStore(Protocol):
    """What a running machine needs from persistence."""

    async def load(self, name: str) -> SavedMachine | None: ...

    async def load_many(self, names: Sequence[str]) -> dict[str, SavedMachine]:
        """``load`` for many machines at once (those with a row)."""
        ...

    async def save(self, saved: SavedMachine) -> None: ...

    async def save_many(self, saved: Sequence[SavedMachine]) -> None:
        """``save`` for many machines, in one write."""
        ...

    async def record_transition(
        self, record: TransitionRecord, events: Sequence[Envelope] = ()
    ) -> None: ...

    async def record_late(self, writes: Sequence[LateWrite]) -> None: ...

    async def save_data(self, name: str, data: dict[str, Any], at: float) -> None: ...

    async def append_events(self, events: Sequence[Envelope]) -> None: ...

    async def history(self, name: str, limit: int) -> list[HistoryEntry]: ...

    async def history_many(self, names: Sequence[str], limit: int) -> dict[str, list[HistoryEntry]]:
        """``history`` for many machines at once (those with any)."""
        ...


class SqliteStore:
    """The SQLite-backed MachineStore. ``open()`` before use, ``close()`` after."""

    def __init__(
        self,
        path: Path,
        limits: OutboxLimits | None = None,
        *,
        history_keep: int = DEFAULT_HISTORY_KEEP,
    ) -> None:
        self.path = path
        self.limits = limits or OutboxLimits()
        self.history_keep = history_keep
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self.commits = 0  # transactions committed (for benchmarks: writes / commits)
        self.writes = 0
        # outbox size, kept in step with the table on the store thread
        self._events = 0
        self._bytes = 0
        self._dropped = 0
        self._dropped_by_kind: dict[str, int] = {}
        self._dropped_unreported: dict[str, int] = {}
        self._last_drop_warning = 0.0
        self._last_wal_release = -WAL_RELEASE_EVERY

    async def open(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="steward-store", daemon=True)
        self._thread.start()
        try:
            await self._call(self._open)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._thread is None:
            return
        await self._call(self._close)
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the store thread (reads, and anything managing its own transaction)."""
        return await self._submit(fn, write=False)

    async def _write(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the store thread inside a (group) transaction."""
        return await self._submit(fn, write=True)

    async def _submit(self, fn: Callable[[], T], *, write: bool) -> T:
        if self._thread is None:
            raise StoreError("state store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(fn, future, loop, write))
        try:
            return await future
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    # the store thread ------------------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if not job.write:
                job.run()
                continue
            batch = [job]
            while len(batch) < GROUP_COMMIT_MAX:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._jobs.put(None)
                    break
                if not nxt.write:
                    nxt.run()  # reads see committed data only; they never wait on a batch
                    continue
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        db = self._db
        if db is None:
            for job in batch:
                job.fail(StoreError("state store is not open"))
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for i, job in enumerate(batch):
                db.execute(f"SAVEPOINT w{i}")
                try:
                    outcomes.append((True, job.fn()))
                except Exception as exc:
                    db.execute(f"ROLLBACK TO w{i}")
                    outcomes.append((False, exc))
                db.execute(f"RELEASE w{i}")
            db.execute("COMMIT")
        except sqlite3.Error as exc:  # BEGIN or COMMIT failed (disk full, I/O error)
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                self._release_wal(db)
            self._recount(db)
            for job in batch:
                job.fail(exc)
            return
        self.commits += 1
        self.writes += len(batch)
        if any(not ok for ok, _ in outcomes):
            self._recount(db)
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                job.succeed(value)
            else:
                job.fail(value)

    # runs on the store thread ---------------------------------------------------------------
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        # a small WAL (checkpoint every WAL_PAGES pages, then cut back to that size): on a
        # nearly full disk, writes that waited in memory fit again sooner (the default, 1,000
        # pages, is 4 MiB of WAL on top of the database)
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        db.execute(f"PRAGMA journal_size_limit={WAL_PAGES * 4096}")
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            db.close()
            raise StoreError(
                f"state database {self.path} has schema {version}, newer than this steward "
                f"({SCHEMA_VERSION}); upgrade steward or move the file away"
            )
        db.executescript(SCHEMA)
        _add_outbox_columns(db)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._recount(db)
        self._db = db

    def _release_wal(self, db: sqlite3.Connection) -> None:
        """The disk is full: fold the WAL into the database and truncate it, which frees its
        space (a WAL only shrinks this way) so that later, smaller writes may fit again."""
        now = time.monotonic()
        if now - self._last_wal_release < WAL_RELEASE_EVERY:
            return
        self._last_wal_release = now
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.debug("cannot truncate the WAL: %s", exc, extra={"error": str(exc)})

    def _recount(self, db: sqlite3.Connection) -> None:
        self._events, self._bytes = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM outbox"
        ).fetchone()
        counts = dict(db.execute("SELECT name, value FROM counters WHERE name LIKE 'outbox_%'"))
        self._dropped = counts.get(DROPPED, 0)
        prefix = f"{DROPPED}:"
        self._dropped_by_kind = {
            name[len(prefix) :]: value for name, value in counts.items() if name.startswith(prefix)
        }

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
        return (await self.load_many([name])).get(name)

    async def load_many(self, names: Sequence[str]) -> dict[str, SavedMachine]:
        """The saved rows of these machines (those that have one), in one call to the store
        thread: starting 10,000 machines is one round trip, not 10,000."""

        def q() -> dict[str, SavedMachine]:
            db = self._conn()
            out: dict[str, SavedMachine] = {}
            for name in names:
                row = db.execute(
                    "SELECT name, version, state, since, seq, data FROM machines WHERE name=?",
                    (name,),
                ).fetchone()
                if row is not None:
                    out[name] = _saved(row)
            return out

        return await self._call(q)

    async def save(self, saved: SavedMachine) -> None:
        await self.save_many([saved])

    async def save_many(self, saved: Sequence[SavedMachine]) -> None:
        """Write these machines' rows in one write (a seq never goes back)."""

        def q() -> None:
            self._conn().executemany(
                "INSERT INTO machines(name, version, state, since, seq, data, updated) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                "version=excluded.version, state=excluded.state, since=excluded.since, "
                "seq=excluded.seq, data=excluded.data, updated=excluded.updated "
                "WHERE machines.seq <= excluded.seq",  # the sequence never goes back
                [
                    (m.name, m.version, m.state, m.since, m.seq, json.dumps(m.data), m.since)
                    for m in saved
                ],
            )

        await self._write(q)

    async def record_transition(
        self, record: TransitionRecord, events: Sequence[Envelope] = ()
    ) -> None:
        def q() -> None:
            self._record(self._conn(), record, events)

        await self._write(q)

    async def record_late(self, writes: Sequence[LateWrite]) -> None:
        """Write transitions (with history and events) and events that could not be written
        when they happened, in their order, in one transaction: all of them or none."""

        def q() -> None:
            db = self._conn()
            for w in writes:
                if w.record is None:
                    self._append(db, w.events)
                elif not self._stored(db, w.record):
                    self._record(db, w.record, w.events)

        await self._write(q)

    def _stored(self, db: sqlite3.Connection, record: TransitionRecord) -> bool:
        """Whether ``record`` (or a later transition of its machine) is already stored: a late
        write may have been committed before, though its caller heard of a failure."""
        row = db.execute("SELECT seq FROM machines WHERE name=?", (record.machine,)).fetchone()
        return row is not None and row[0] >= record.seq

    def _record(
        self, db: sqlite3.Connection, record: TransitionRecord, events: Sequence[Envelope]
    ) -> None:
        """On the store thread: the transition, its history entry and its events."""
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
        self._remember(db, record)
        self._append(db, events)

    async def history(self, name: str, limit: int) -> list[HistoryEntry]:
        """The machine's last ``limit`` recorded transitions, oldest first."""
        return (await self.history_many([name], limit)).get(name, [])

    async def history_many(self, names: Sequence[str], limit: int) -> dict[str, list[HistoryEntry]]:
        """``history`` of each of these machines (those that have any), in one call to the
        store thread."""

        def q() -> dict[str, list[HistoryEntry]]:
            db = self._conn()
            out: dict[str, list[HistoryEntry]] = {}
            for name in names:
                rows = db.execute(
                    "SELECT seq, at, transition, from_state, to_state, version, cause "
                    "FROM history WHERE machine=? ORDER BY seq DESC LIMIT ?",
                    (name, limit),
                ).fetchall()
                if rows:
                    out[name] = [_entry(row) for row in reversed(rows)]
            return out

        return await self._call(q)

    async def save_data(self, name: str, data: dict[str, Any], at: float) -> None:
        def q() -> None:
            self._conn().execute(
                "UPDATE machines SET data=?, updated=? WHERE name=?", (json.dumps(data), at, name)
            )

        await self._write(q)

    async def append_events(self, events: Sequence[Envelope]) -> None:
        if not events:
            return

        def q() -> None:
            self._append(self._conn(), events)

        await self._write(q)

    async def outbox_peek(self, limit: int, *, upto: int | None = None) -> list[OutboxRow]:
        """The oldest ``limit`` events, in order (only rowids <= ``upto``, if given)."""

        def q() -> list[OutboxRow]:
            rows = (
                self._conn()
                .execute(
                    "SELECT id, event_id, subject, body, machine FROM outbox WHERE id <= ? "
                    "ORDER BY id LIMIT ?",
                    (upto if upto is not None else _MAX_ROWID, limit),
                )
                .fetchall()
            )
            return [OutboxRow(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

        return await self._call(q)

    async def outbox_peek_live(self, after: int, limit: int) -> list[OutboxRow]:
        """The oldest ``limit`` events after rowid ``after`` of machines that have no event
        at or before ``after`` left (the index on (machine, id) answers that per row)."""

        def q() -> list[OutboxRow]:
            rows = (
                self._conn()
                .execute(
                    "SELECT id, event_id, subject, body, machine FROM outbox AS o WHERE id > ? "
                    "AND NOT EXISTS (SELECT 1 FROM outbox AS b "
                    "WHERE b.machine = o.machine AND b.id <= ?) ORDER BY id LIMIT ?",
                    (after, after, limit),
                )
                .fetchall()
            )
            return [OutboxRow(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

        return await self._call(q)

    async def outbox_last_rowid(self) -> int:
        def q() -> int:
            row = self._conn().execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()
            return int(row[0])

        return await self._call(q)

    async def outbox_remove_rows(self, rowids: Sequence[int]) -> None:
        """Remove these events (NATS confirmed them), wherever they are in the outbox."""
        if not rowids:
            return

        def q() -> None:
            db = self._conn()
            for rowid in rowids:
                row = db.execute("SELECT LENGTH(body) FROM outbox WHERE id=?", (rowid,)).fetchone()
                if row is None:
                    continue
                db.execute("DELETE FROM outbox WHERE id=?", (rowid,))
                self._events -= 1
                self._bytes -= row[0]

        await self._write(q)

    async def outbox_remove(self, upto_rowid: int) -> None:
        """Remove every event up to and including ``upto_rowid`` (NATS confirmed them)."""

        def q() -> None:
            db = self._conn()
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM outbox WHERE id <= ?",
                (upto_rowid,),
            ).fetchone()
            db.execute("DELETE FROM outbox WHERE id <= ?", (upto_rowid,))
            self._events -= count
            self._bytes -= size

        await self._write(q)

    def outbox_snapshot(self) -> OutboxStats:
        """The outbox counters as last written (read without waiting for the store thread)."""
        return OutboxStats(self._events, self._bytes, self._dropped, dict(self._dropped_by_kind))

    async def outbox_stats(self) -> OutboxStats:
        def q() -> OutboxStats:
            return self.outbox_snapshot()

        return await self._call(q)

    # runs on the store thread, inside a transaction ------------------------------------------
    def _remember(self, db: sqlite3.Connection, record: TransitionRecord) -> None:
        """Add the transition to its machine's history and drop what falls out of it."""
        db.execute(
            "INSERT OR REPLACE INTO history"
            "(machine, seq, at, transition, from_state, to_state, version, cause) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                record.machine,
                record.seq,
                record.at,
                record.transition,
                record.from_state,
                record.to_state,
                record.version,
                json.dumps(record.cause.as_dict(), default=str),
            ),
        )
        db.execute(
            "DELETE FROM history WHERE machine=? AND seq<=?",
            (record.machine, record.seq - self.history_keep),
        )

    def _append(self, db: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        if not events:
            return
        db.executemany(
            "INSERT INTO outbox(event_id, machine, subject, body, kind, priority) "
            "VALUES (?,?,?,?,?,?)",
            [
                (e.id, e.machine, e.subject, e.body, e.kind.value, priority_of(e.kind))
                for e in events
            ],
        )
        count = self._events + len(events)
        size = self._bytes + sum(len(e.body) for e in events)
        if count > self.limits.max_events or size > self.limits.max_bytes:
            count, size = self._trim(db, count, size)
        # published once within the limits: status and metrics read these from other threads
        self._events, self._bytes = count, size

    def _trim(self, db: sqlite3.Connection, count: int, size: int) -> tuple[int, int]:
        """Drop events until the outbox (``count`` events, ``size`` bytes) is within its
        limits: the lowest priority first, oldest first within it (the index on (priority,
        id) finds them). Returns the new count and size."""
        dropped: dict[str, int] = {}
        while count > self.limits.max_events or size > self.limits.max_bytes:
            over = max(count - self.limits.max_events, 1)
            rows = db.execute(
                "SELECT id, kind, LENGTH(body) FROM outbox ORDER BY priority, id LIMIT ?", (over,)
            ).fetchall()
            if not rows:
                break
            db.executemany("DELETE FROM outbox WHERE id=?", [(r[0],) for r in rows])
            for _, kind, _ in rows:
                dropped[kind] = dropped.get(kind, 0) + 1
            count -= len(rows)
            size -= sum(r[2] for r in rows)
        self._count_drops(db, dropped)
        return count, size

    def _count_drops(self, db: sqlite3.Connection, dropped: dict[str, int]) -> None:
        """Add ``dropped`` (per kind) to the counters, kept in the database, and warn at most
        every ``DROP_WARNING_EVERY`` seconds while the outbox keeps overflowing."""
        self._dropped += sum(dropped.values())
        updates = [(DROPPED, self._dropped)]
        for kind, count in dropped.items():
            self._dropped_by_kind[kind] = self._dropped_by_kind.get(kind, 0) + count
            updates.append((f"{DROPPED}:{kind}", self._dropped_by_kind[kind]))
            self._dropped_unreported[kind] = self._dropped_unreported.get(kind, 0) + count
        db.executemany(
            "INSERT INTO counters(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            updates,
        )
        now = time.monotonic()
        if now - self._last_drop_warning >= DROP_WARNING_EVERY:
            unreported = self._dropped_unreported
            log.warning(
                "event outbox full: dropped %d events, lowest priority first (%s; %d in all)",
                sum(unreported.values()),
                ", ".join(f"{kind} {n}" for kind, n in sorted(unreported.items())),
                self._dropped,
                extra={
                    "dropped": dict(unreported),
                    "dropped_total": self._dropped,
                    "max_events": self.limits.max_events,
                    "max_bytes": self.limits.max_bytes,
                },
            )
            self._dropped_unreported = {}
            self._last_drop_warning = now

    async def integrity_check(self) -> str:
        def q() -> str:
            return str(self._conn().execute("PRAGMA integrity_check").fetchone()[0])

        return await self._call(q)


def _add_outbox_columns(db: sqlite3.Connection) -> None:
    """Give a version-1 outbox its kind and priority columns (its rows keep the top priority)
    and name the kind of rows without one (written before, or by an older steward)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    db.execute("BEGIN IMMEDIATE")
    try:
        for name, ddl in OUTBOX_COLUMNS.items():
            if name not in columns:
                db.execute(ddl)
        db.execute(KIND_FROM_SUBJECT)
        for ddl in OUTBOX_INDEXES:
            db.execute(ddl)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _saved(row: tuple[Any, ...]) -> SavedMachine:
    try:
        data = json.loads(row[5])
    except ValueError:
        data = {}
    return SavedMachine(row[0], row[1], row[2], row[3], row[4], data)


def _entry(row: tuple[Any, ...]) -> HistoryEntry:
    seq, at, transition, from_state, to_state, version, cause = row
    try:
        raw = json.loads(cause)
    except ValueError:
        raw = {}
    return HistoryEntry(
        seq,
        at,
        transition,
        from_state,
        to_state,
        version,
        Cause.from_dict(raw if isinstance(raw, dict) else {}),
    )


class _Job:
    """One call for the store thread, answered on the caller's event loop."""

    def __init__(
        self,
        fn: Callable[[], Any],
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
        write: bool,
    ) -> None:
        self.fn = fn
        self.future = future
        self.loop = loop
        self.write = write

    def run(self) -> None:
        try:
            value = self.fn()
        except Exception as exc:
            self.fail(exc)
        else:
            self.succeed(value)

    def succeed(self, value: Any) -> None:
        self._answer(value, None)

    def fail(self, exc: BaseException) -> None:
        self._answer(None, exc)

    def _answer(self, value: Any, exc: BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(
                _settle, self.future, value, None if exc is None else exc
            )
        except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
            pass


def _settle(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled); the write itself stands
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)
