"""Reading the fleet bucket: everything it holds now, then every change (``steward fleet status``
and ``watch``, the dashboard).

Two KV watches (node keys ``*``, machine keys ``*.*``: the server filters, graph keys never
travel) feed one ``FleetView``. ``load()`` returns once both watches delivered what the bucket
held when they started; ``changes()`` then yields what each later entry changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from steward.errors import ApiError
from steward.fleet.state import DEFAULT_BUCKET, FleetView, graph_key

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

_DONE = object()  # one watch delivered everything the bucket held when it started


async def open_bucket(js: JetStreamContext, bucket: str = DEFAULT_BUCKET) -> KeyValue:
    from nats.js.errors import BucketNotFoundError, NotFoundError

    try:
        return await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        raise ApiError(
            f"no fleet bucket {bucket!r}: no daemon with NATS has reported yet "
            "(or it uses another fleet.bucket)"
        ) from None


class FleetFeed:
    """A live ``FleetView`` of one bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self.view = FleetView()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._watchers: list[Any] = []

    async def load(self) -> FleetView:
        for pattern in ("*", "*.*"):
            watcher = await self.kv.watch(pattern)
            self._watchers.append(watcher)
            self._tasks.append(asyncio.ensure_future(self._pump(watcher)))
        waiting = len(self._watchers)
        while waiting:
            item = await self._queue.get()
            if item is _DONE:
                waiting -= 1
            else:
                self._apply(item)
        return self.view

    async def changes(self) -> AsyncIterator[tuple[str, str | None]]:
        """What each entry after ``load()`` changed: (node, machine) or (node, None)."""
        while True:
            item = await self._queue.get()
            if item is _DONE:
                continue
            changed = self._apply(item)
            if changed is not None:
                yield changed

    async def graph(self, node: str, machine: str) -> dict[str, Any] | None:
        import json

        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        try:
            entry = await self.kv.get(graph_key(node, machine))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        try:
            doc = json.loads(entry.value or b"")
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for watcher in self._watchers:
            with contextlib.suppress(Exception):
                await watcher.stop()
        self._tasks.clear()
        self._watchers.clear()

    async def _pump(self, watcher: Any) -> None:
        async for entry in watcher:
            self._queue.put_nowait(_DONE if entry is None else entry)

    def _apply(self, entry: Any) -> tuple[str, str | None] | None:
        created = entry.created.timestamp() if entry.created is not None else None
        deleted = entry.operation in ("DEL", "PURGE")
        return self.view.apply(entry.key, entry.value, deleted=deleted, created=created)
