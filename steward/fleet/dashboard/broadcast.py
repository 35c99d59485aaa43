"""One fleet feed, many listeners: every change to the bucket and every node that falls silent
becomes one server-sent-event message, encoded once and offered to each open page.

Silence makes no KV entry, so the broadcast wakes itself at ``view.next_deadline(now)`` (the
next moment an online node turns offline if no heartbeat comes) and sends each node whose
online/offline flipped. Nothing polls: between a change and a deadline it sleeps.

A listener that falls ``backlog`` messages behind is dropped (its stream ends; the page's
EventSource reconnects and starts again from a fresh snapshot), so a stuck browser never
holds memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from steward.fleet.dashboard.documents import fleet_doc, machine_doc, node_doc
from steward.fleet.state import FleetView

if TYPE_CHECKING:
    from steward.fleet.feed import FleetFeed

log = logging.getLogger(__name__)

BACKLOG = 1000  # messages a listener may be behind before it is dropped
SLACK = 0.05  # seconds after a node's deadline to look: it is then surely past


def sse(event: str, data: Any) -> bytes:
    """One server-sent event."""
    payload = json.dumps(data, separators=(",", ":"), default=str)
    return f"event: {event}\ndata: {payload}\n\n".encode()


class Listener:
    """One open page's queue of messages."""

    def __init__(self, backlog: int = BACKLOG) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(backlog)
        self.dropped = False

    def offer(self, message: bytes | None) -> None:
        if self.dropped:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True

    async def next(self) -> bytes | None:
        """The next message, or None once the stream must end (dropped, or shutting down)."""
        if self.dropped:
            return None
        return await self._queue.get()


class FleetBroadcast:
    """``start()`` loads the bucket and follows it; ``listen()`` opens a page's stream."""

    def __init__(
        self,
        feed: FleetFeed,
        *,
        clock: Callable[[], float] = time.time,
        backlog: int = BACKLOG,
    ) -> None:
        self.feed = feed
        self.clock = clock
        self.backlog = backlog
        self._listeners: set[Listener] = set()
        self._online: dict[str, bool] = {}  # what the listeners were last told
        self._task: asyncio.Task[None] | None = None

    @property
    def view(self) -> FleetView:
        return self.feed.view

    async def start(self) -> None:
        view = await self.feed.load()
        now = self.clock()
        self._online = {node: entry.online(now) for node, entry in view.nodes.items()}
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for listener in self._listeners:
            listener.offer(None)
        self._listeners.clear()
        await self.feed.close()

    def snapshot(self) -> dict[str, Any]:
        return fleet_doc(self.view, self.clock())

    def listen(self) -> tuple[bytes, Listener]:
        """The fleet now (a ``snapshot`` message) and a listener for everything after it: no
        change can fall between the two."""
        listener = Listener(self.backlog)
        self._listeners.add(listener)
        return sse("snapshot", self.snapshot()), listener

    def forget(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    # following the bucket -------------------------------------------------------------------
    async def _run(self) -> None:
        changes = self.feed.changes()
        pending: asyncio.Task[tuple[str, str | None]] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(_next(changes))
                now = self.clock()
                deadline = self.view.next_deadline(now)
                timeout = None if deadline is None else max(0.0, deadline - now) + SLACK
                done, _ = await asyncio.wait({pending}, timeout=timeout)
                if pending in done:
                    changed, pending = pending.result(), None
                    self._changed(*changed)
                self._flips()
        except StopAsyncIteration:
            log.warning("the fleet bucket's watch ended: the page shows the last known state")
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            with contextlib.suppress(RuntimeError):
                await changes.aclose()  # type: ignore[attr-defined]

    def _changed(self, node: str, machine: str | None) -> None:
        now = self.clock()
        view = self.view
        if machine is not None:
            doc = view.machines.get((node, machine))
            if doc is None:
                self._send("machine-removed", {"node": node, "machine": machine}, now)
            else:
                self._send("machine", machine_doc(doc), now)
        # a machine may be the first sign of a node, and a node's own key changes it
        if node in view.node_names():
            if machine is None or node not in self._online:
                self._send_node(node, now)
        else:
            self._online.pop(node, None)
            self._send("node-removed", {"node": node}, now)

    def _flips(self) -> None:
        now = self.clock()
        for node, entry in self.view.nodes.items():
            if self._online.get(node) != entry.online(now):
                self._send_node(node, now)

    def _send_node(self, node: str, now: float) -> None:
        doc = node_doc(self.view, node, now)
        self._online[node] = doc["online"]
        self._send("node", doc, now)

    def _send(self, event: str, data: dict[str, Any], now: float) -> None:
        message = sse(event, {**data, "now": now})
        for listener in list(self._listeners):
            listener.offer(message)
            if listener.dropped:
                self._listeners.discard(listener)
                log.info("dropped a dashboard page that fell %d messages behind", self.backlog)


async def _next(changes: AsyncIterator[tuple[str, str | None]]) -> tuple[str, str | None]:
    return await anext(changes)
