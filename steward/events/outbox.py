"""The outbox: events kept on disk until NATS confirmed them.

The types are here; the storage is the state database (``SqliteStore`` implements
``Outbox``), so that a transition and its event are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from steward.events.envelope import Envelope


@dataclass(frozen=True)
class OutboxLimits:
    max_events: int = 100_000
    max_bytes: int = 64 * 1024 * 1024


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
    dropped: int


class Outbox(Protocol):
    """Durable, ordered, bounded storage of events not yet confirmed by NATS."""

    async def append_events(self, events: Sequence[Envelope]) -> None: ...

    async def outbox_peek(self, limit: int) -> list[OutboxRow]: ...

    async def outbox_remove(self, upto_rowid: int) -> None: ...

    async def outbox_stats(self) -> OutboxStats: ...

    def outbox_snapshot(self) -> OutboxStats:
        """The counters as last written, without waiting for the store."""
        ...
