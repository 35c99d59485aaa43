"""Reading the fleet bucket: everything it holds now, then every change (``steward fleet status``
and ``watch``, the dashboard).

Two KV watches (node keys ``*``, machine keys ``*.*``: the server filters, graph keys never
travel) feed one ``FleetView``. ``load()`` returns once both watches delivered what the bucket
held when they started; ``changes()`` then yields what each later entry changed.

nats-py's watch marks the end of what the bucket held with a ``None``, and that marker can
come *before* the entries: when all of the consumer's messages had reached the client but not
yet the watch at the moment it asked the server how many were pending (none: all delivered),
it concludes the bucket is empty. Trusting it, ``steward fleet status`` once printed a table
without a machine the bucket held (under load, in CI). So ``load()`` takes a watch as done at
its entry with nothing pending after it (``delta`` 0), and at the marker only if it has seen an
entry or the stream holds no key of its pattern (one stream look-up with a subject filter).
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
PATTERNS = ("*", "*.*")  # node keys, machine keys


async def open_bucket(js: JetStreamContext, bucket: str = DEFAULT_BUCKET) -> KeyValue:
    from nats.js.errors import BucketNotFoundError, NotFoundError

    try:
        return await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        raise ApiError(
            f"no fleet bucket {bucket!r}: no daemon with NATS has reported yet "
            "(or it uses another fleet.bucket)"
        ) from None


async def read_keys(kv: KeyValue, js: JetStreamContext, pattern: str) -> list[Any]:
    """The bucket's entries under ``pattern`` now (the latest of each key, deleted ones
    included: ``operation`` says), not trusting nats-py's end marker where it came first
    (the module's docstring)."""
    watcher: Any = await kv.watch(pattern)
    try:
        entries: list[Any] = []
        async for entry in watcher:
            if entry is not None:
                entries.append(entry)
            if await snapshot_over(kv, js, pattern, entry, seen=bool(entries)):
                break
        return entries
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()


async def snapshot_over(
    kv: KeyValue, js: JetStreamContext, pattern: str, item: Any, *, seen: bool
) -> bool:
    """Whether a watch of ``pattern`` has delivered what the bucket held when it started, at
    ``item`` (an entry, or nats-py's end marker ``None``; ``seen``: an entry came before): at
    the entry with nothing pending after it, or at the marker once an entry came or the
    stream holds no key of ``pattern`` (else the entries follow: the module's docstring)."""
    if item is None:
        return seen or not await holds(kv, js, pattern)
    return bool(item.delta == 0)


async def holds(kv: KeyValue, js: JetStreamContext, pattern: str) -> bool:
    """Whether the bucket's stream holds any key matching ``pattern`` now (a deleted key's
    marker counts: a watch delivers it)."""
    status = await kv.status()
    stream = status.stream_info.config.name or f"KV_{status.bucket}"
    info = await js.stream_info(stream, subjects_filter=f"$KV.{status.bucket}.{pattern}")
    return bool(info.state.subjects)


class FleetFeed:
    """A live ``FleetView`` of one bucket."""

    def __init__(self, kv: KeyValue, js: JetStreamContext) -> None:
        self.kv = kv
        self.view = FleetView()
        self._js = js
        self._queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._watchers: list[Any] = []

    async def load(self) -> FleetView:
        for index, pattern in enumerate(PATTERNS):
            watcher = await self.kv.watch(pattern)
            self._watchers.append(watcher)
            self._tasks.append(asyncio.ensure_future(self._pump(index, watcher)))
        loading = set(range(len(PATTERNS)))
        seen: set[int] = set()
        while loading:
            index, item = await self._queue.get()
            entry = None if item is _DONE else item
            if entry is not None:
                self._apply(entry)
                seen.add(index)
            if await snapshot_over(self.kv, self._js, PATTERNS[index], entry, seen=index in seen):
                loading.discard(index)
        return self.view

    async def changes(self) -> AsyncIterator[tuple[str, str | None]]:
        """What each entry after ``load()`` changed: (node, machine) or (node, None)."""
        while True:
            _, item = await self._queue.get()
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

    async def _pump(self, index: int, watcher: Any) -> None:
        async for entry in watcher:
            self._queue.put_nowait((index, _DONE if entry is None else entry))

    def _apply(self, entry: Any) -> tuple[str, str | None] | None:
        created = entry.created.timestamp() if entry.created is not None else None
        deleted = entry.operation in ("DEL", "PURGE")
        return self.view.apply(entry.key, entry.value, deleted=deleted, created=created)
