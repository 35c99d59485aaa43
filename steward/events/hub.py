"""Where committed events go in the process: local subscribers (the API's SSE stream), a
short history for ``steward events``, and the wake-up of the NATS publisher.

A slow local subscriber never holds anything up: its queue is bounded and, when full, its
oldest events are dropped and counted for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence

from steward.events.builder import EventBuilder
from steward.events.envelope import Envelope, EventKind

RECENT = 1000
SUBSCRIBER_QUEUE = 1000


class LocalSubscription:
    def __init__(self, hub: EventHub, machine: str | None, kind: EventKind | None) -> None:
        self._hub = hub
        self.machine = machine
        self.kind = kind
        self.queue: asyncio.Queue[Envelope] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.dropped = 0

    def wants(self, env: Envelope) -> bool:
        return (self.machine is None or env.machine == self.machine) and (
            self.kind is None or env.kind is self.kind
        )

    def offer(self, env: Envelope) -> None:
        if not self.wants(env):
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(env)

    async def next(self) -> Envelope:
        return await self.queue.get()

    def close(self) -> None:
        self._hub._subscribers.discard(self)


class EventHub:
    """``durable``: events go to the outbox for a publisher. Without NATS configured nobody
    would ever read the outbox, so events are only handed to local consumers."""

    def __init__(self, builder: EventBuilder, *, durable: bool = True) -> None:
        self.builder = builder
        self.durable = durable
        self._subscribers: set[LocalSubscription] = set()
        self._recent: deque[Envelope] = deque(maxlen=RECENT)
        self.outbox_changed = asyncio.Event()  # the publisher's one-slot wake-up
        self.emitted = 0

    def committed(self, envelopes: Sequence[Envelope], *, stored: bool = True) -> None:
        """Events now in the outbox (or, with ``stored=False``, only in memory)."""
        for env in envelopes:
            self.emitted += 1
            self._recent.append(env)
            for sub in list(self._subscribers):
                sub.offer(env)
        if stored and envelopes:
            self.outbox_changed.set()

    def subscribe(
        self, machine: str | None = None, kind: EventKind | None = None
    ) -> LocalSubscription:
        sub = LocalSubscription(self, machine, kind)
        self._subscribers.add(sub)
        return sub

    def recent(
        self, machine: str | None = None, kind: EventKind | None = None, limit: int = 100
    ) -> list[Envelope]:
        probe = LocalSubscription(self, machine, kind)
        matching: Iterable[Envelope] = (e for e in self._recent if probe.wants(e))
        return list(matching)[-limit:]
