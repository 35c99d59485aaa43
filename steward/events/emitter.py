"""Emission, end to end: every event steward emits goes through ``Emitter``.

An event is built by the node's ``EventFormat``, then kept by the ``EventSink`` (or not), then
handed to local consumers (``LocalEvents``). Which sink a daemon has is decided once, in
``steward.events.pipeline``: with NATS configured, ``OutboxSink`` stores every event in the
outbox and wakes the publisher; without, ``LocalOnly`` stores nothing, since nobody would
ever read the outbox. A transition's event is kept in the same transaction as the
transition itself (``commit_transition``).

Keeping fails only with ``StoreError`` (a full disk, say): the event is still delivered
locally, and the caller decides what the failure means for it. A running machine keeps what
could not be written in memory (``LateWrite``), hands later events to ``hold`` (local delivery
now) while older writes wait, and writes them all in order with ``catch_up`` once the store
works again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from steward.errors import StoreError
from steward.events.envelope import Envelope
from steward.events.formats import EventFormat
from steward.events.local import LocalEvents
from steward.events.outbox import Outbox

if TYPE_CHECKING:
    from steward.machine.persistence import LateWrite, TransitionRecord


class TransitionStore(Protocol):
    """Writes a transition and the events that go with it in one transaction."""

    async def record_transition(
        self, record: TransitionRecord, events: Sequence[Envelope] = ()
    ) -> None: ...

    async def record_late(self, writes: Sequence[LateWrite]) -> None:
        """Write what could not be written before, in order, in one transaction."""
        ...


class EventSink(Protocol):
    """Keeps events for delivery beyond this process."""

    def keeps(self, envelope: Envelope) -> bool:
        """Whether ``envelope`` is to be stored."""
        ...

    async def store(self, envelopes: Sequence[Envelope]) -> None:
        """Store events on their own (raises StoreError)."""
        ...

    def stored(self) -> None:
        """Events were stored (on their own or with a transition)."""
        ...


class OutboxSink:
    """Every event goes to the outbox; ``changed`` wakes the publisher (one slot)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.changed = asyncio.Event()

    def keeps(self, envelope: Envelope) -> bool:
        return True

    async def store(self, envelopes: Sequence[Envelope]) -> None:
        await self.outbox.append_events(envelopes)

    def stored(self) -> None:
        self.changed.set()


class LocalOnly:
    """No NATS configured: events are not stored (the null sink)."""

    def keeps(self, envelope: Envelope) -> bool:
        return False

    async def store(self, envelopes: Sequence[Envelope]) -> None:
        pass

    def stored(self) -> None:
        pass


class Emitter:
    """Builds (``format``), keeps (the sink) and delivers locally (``local``) every event."""

    def __init__(self, fmt: EventFormat, sink: EventSink, local: LocalEvents) -> None:
        self.format = fmt
        self.sink = sink
        self.local = local

    async def emit(self, envelopes: Sequence[Envelope]) -> None:
        """Keep the events the sink keeps, then deliver them all locally.

        Raises StoreError (after delivering locally) if they could not be kept.
        """
        kept = [e for e in envelopes if self.sink.keeps(e)]
        if kept:
            try:
                await self.sink.store(kept)
            except StoreError:
                self.local.deliver(envelopes)
                raise
            except asyncio.CancelledError:
                self.sink.stored()  # the store's thread may write them all the same
                raise
        self.local.deliver(envelopes)
        if kept:
            self.sink.stored()

    async def commit_transition(
        self, store: TransitionStore, record: TransitionRecord, event: Envelope
    ) -> None:
        """Write the transition and (if kept) its event in one transaction, then deliver the
        event locally. Raises StoreError (after delivering locally) if the write failed."""
        kept = [event] if self.sink.keeps(event) else []
        try:
            await store.record_transition(record, kept)
        except StoreError:
            self.local.deliver([event])
            raise
        except asyncio.CancelledError:
            # the caller was cancelled (a machine stopping), not the write: the store's thread
            # may commit it all the same, and an event nobody wakes the publisher for would
            # wait for the next one (measured: 1,500 idle virtual nodes kept 26 such events)
            if kept:
                self.sink.stored()
            raise
        self.local.deliver([event])
        if kept:
            self.sink.stored()

    def hold(self, envelopes: Sequence[Envelope]) -> None:
        """Deliver events locally now; the caller keeps them (``LateWrite``) for ``catch_up``,
        since older writes still wait for the store."""
        self.local.deliver(envelopes)

    async def catch_up(self, store: TransitionStore, writes: Sequence[LateWrite]) -> None:
        """Write ``writes`` (already delivered locally) in order, with only the events the sink
        keeps. Raises StoreError if the store still fails; nothing of ``writes`` is then kept."""
        kept = [replace(w, events=tuple(e for e in w.events if self.sink.keeps(e))) for w in writes]
        await store.record_late(kept)
        if any(w.events for w in kept):
            self.sink.stored()
