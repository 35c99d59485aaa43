"""Events in the process: local subscribers (the API's SSE stream) and a short history for
``steward events``. Works the same with or without NATS.

A slow local subscriber never holds anything up: its queue is bounded and, when full, its
oldest events are dropped and counted for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence

from steward.events.envelope import Envelope, EventKind

RECENT = 1000
SUBSCRIBER_QUEUE = 1000


class LocalSubscription:
    def __init__(self, local: LocalEvents, machine: str | None, kind: EventKind | None) -> None:
        self._local = local
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
        self._local.unsubscribe(self)


class LocalEvents:
    """The in-process fan-out of every event the daemon emits."""

    def __init__(self) -> None:
        self._subscribers: set[LocalSubscription] = set()
        self._recent: deque[Envelope] = deque(maxlen=RECENT)
        self.emitted = 0

    def deliver(self, envelopes: Sequence[Envelope]) -> None:
        for env in envelopes:
            self.emitted += 1
            self._recent.append(env)
            for sub in list(self._subscribers):
                sub.offer(env)

    def subscribe(
        self, machine: str | None = None, kind: EventKind | None = None
    ) -> LocalSubscription:
        sub = LocalSubscription(self, machine, kind)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: LocalSubscription) -> None:
        self._subscribers.discard(sub)

    def recent(
        self, machine: str | None = None, kind: EventKind | None = None, limit: int = 100
    ) -> list[Envelope]:
        probe = LocalSubscription(self, machine, kind)
        matching: Iterable[Envelope] = (e for e in self._recent if probe.wants(e))
        return list(matching)[-limit:]
