"""The outbox: events kept on disk until NATS confirmed them.

The types are here; the storage is the state database (``SqliteStore`` implements
``Outbox``), so that a transition and its event are written in one transaction.

Every event has a ``Priority`` by its kind. When a write would overflow the outbox, the
lowest priority goes first, oldest first within it: watcher announcements, then lifecycle
events, and a transition only when nothing else is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from steward.events.envelope import Envelope, EventKind
from steward.settings import OutboxLimits as OutboxLimits  # steward.yaml's; here as before


class Priority(IntEnum):
    """What an overflowing outbox drops first: the lowest."""

    ANNOUNCEMENT = 0  # a watcher's state: the next announcement says it again
    LIFECYCLE = 1  # loaded, started, removed, recording_resumed …
    TRANSITION = 2  # the record of what the machine did: dropped only when nothing else is left


PRIORITY_OF_KIND: Mapping[EventKind, Priority] = {
    EventKind.WATCHER: Priority.ANNOUNCEMENT,
    EventKind.LIFECYCLE: Priority.LIFECYCLE,
    EventKind.TRANSITION: Priority.TRANSITION,
}


def priority_of(kind: EventKind) -> Priority:
    return PRIORITY_OF_KIND[kind]


@dataclass(frozen=True)
class OutboxRow:
    rowid: int
    event_id: str
    subject: str
    body: bytes
    machine: str = ""  # the machine the event is about ("" for the daemon's own)


@dataclass(frozen=True)
class OutboxStats:
    events: int
    bytes: int
    dropped: int  # in all, kept across restarts
    dropped_by_kind: Mapping[str, int] = field(default_factory=dict)  # EventKind value -> count


class Outbox(Protocol):
    """Durable, ordered, bounded storage of events not yet confirmed by NATS."""

    async def append_events(self, events: Sequence[Envelope]) -> None: ...

    async def outbox_peek(self, limit: int, *, upto: int | None = None) -> list[OutboxRow]:
        """The oldest ``limit`` events (only those with rowid <= ``upto``, if given)."""
        ...

    async def outbox_peek_live(self, after: int, limit: int) -> list[OutboxRow]:
        """The oldest ``limit`` events newer than rowid ``after`` of machines with nothing
        at or before ``after`` left: what can go ahead of a backlog without reordering any
        machine's events."""
        ...

    async def outbox_last_rowid(self) -> int:
        """The newest event's rowid (0 if the outbox is empty)."""
        ...

    async def outbox_remove(self, upto_rowid: int) -> None: ...

    async def outbox_remove_rows(self, rowids: Sequence[int]) -> None: ...

    async def outbox_stats(self) -> OutboxStats: ...

    def outbox_snapshot(self) -> OutboxStats:
        """The counters as last written, without waiting for the store."""
        ...
