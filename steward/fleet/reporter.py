"""The node's entries in the fleet bucket: one per machine, one for the node (its heartbeat).

The bucket holds state, not a log, so what waits for NATS is not a queue of values but the
set of keys whose value changed (``dirty``): each write sends the machine's value *as it is
now*, read from the running machine, whose state is already committed to SQLite. A node that
was offline while its machines moved writes each changed key once, with its latest value, when
the connection returns; a restarted daemon starts with every key dirty. Nothing older can
follow a newer value: one writer per key (this node), one write in flight per key, each
conditional on the revision it last saw (``Nats-Expected-Last-Subject-Sequence``); when the
bucket holds a value that is newer than ours (a higher seq that also moved later: a second
daemon under the same node name, a restored state dir) ours is not written, and it is said.

On each (re)connect the node lists its own keys (a server-side filter: ``<node>.>``): keys
of machines it no longer runs are deleted, keys already holding our value are not rewritten.
The node key is rewritten every ``heartbeat`` with a per-message TTL (``forget_after``); at a
clean stop it says ``stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from steward import __version__
from steward.clock import Clock
from steward.fleet.state import (
    FleetSettings,
    encode,
    graph_key,
    graph_value,
    is_newer,
    machine_key,
    machine_value,
    node_key,
    node_keys_filter,
    node_value,
    untoken,
)

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

    from steward.broker.link import NatsLink
    from steward.machine.runtime import RunningMachine

log = logging.getLogger("steward.fleet")

BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
CONCURRENT_WRITES = 64  # keys written at once (each its own key: order within a key holds)
WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream's "wrong last sequence" error codes
IGNORED_FIELDS = ("updated",)  # what may differ between two writes of the same value


class FleetReporter:
    """Keeps this node's keys in the fleet bucket in step with its machines."""

    def __init__(
        self,
        settings: FleetSettings,
        *,
        node: str,
        machines: Mapping[str, RunningMachine],
        nats: NatsLink,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.node = node
        self.machines = machines
        self.nats = nats
        self.clock = clock
        self.started = clock.time()
        self.written = 0  # keys written (puts and deletes)
        self.skipped_newer = 0  # writes not made: the bucket held a newer value
        self.heartbeats = 0
        self.last_error: str | None = None
        self.connected = False
        self._dirty: set[str] = set()  # machine names whose key must be written (or deleted)
        self._graphs: set[str] = set()  # machine names whose graph must be written
        self._revisions: dict[str, int] = {}  # key -> the revision we last saw or wrote
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ttl_refused = False

    # what the node tells it ----------------------------------------------------------------
    def machine_added(self, machine: RunningMachine) -> None:
        self._graphs.add(machine.name)
        self.machine_changed(machine)

    def machine_changed(self, machine: RunningMachine) -> None:
        self._dirty.add(machine.name)
        self._wake.set()

    def machine_removed(self, name: str) -> None:
        self._dirty.add(name)
        self._graphs.discard(name)
        self._wake.set()

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._dirty.update(self.machines)
        self._graphs.update(self.machines)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fleet-reporter")

    async def stop(self, grace: float) -> None:
        """Write what is pending and a last heartbeat saying ``stopped``, in ``grace`` s."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if not self.nats.connected or grace <= 0:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(grace):
                js = await self.nats.jetstream()
                kv = await js.key_value(self.settings.bucket)
                await self._flush(js, kv)
                await self._heartbeat(js, stopped=True)

    def status(self) -> dict[str, Any]:
        return {
            "bucket": self.settings.bucket,
            "connected": self.connected and self.nats.connected,
            "pending": len(self._dirty),
            "written": self.written,
            "heartbeats": self.heartbeats,
            "skipped_newer": self.skipped_newer,
            "last_error": self.last_error,
        }

    # the loop --------------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = BACKOFF_START
        while True:
            js = await self.nats.jetstream()  # waits while the connection is down
            try:
                kv = await self._bucket(js)
                await self._resync(js, kv)
                self.connected = True
                backoff = BACKOFF_START
                self.last_error = None
                await self._serve(js, kv)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                message = f"fleet bucket {self.settings.bucket}: {type(exc).__name__}: {exc}"
                if message != self.last_error:
                    log.warning("%s; retrying", message, extra={"error": str(exc)})
                self.last_error = message
                self.nats.report(message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _serve(self, js: JetStreamContext, kv: KeyValue) -> None:
        next_beat = 0.0
        while True:
            now = self.clock.time()
            if now >= next_beat:
                await self._heartbeat(js)
                next_beat = now + self.settings.heartbeat
            if not self._dirty and not self._graphs:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_beat - self.clock.time())):
                        await self._wake.wait()
                continue
            await self._flush(js, kv)

    async def _flush(self, js: JetStreamContext, kv: KeyValue) -> None:
        while self._graphs:
            batch = [self._graphs.pop() for _ in range(min(CONCURRENT_WRITES, len(self._graphs)))]
            try:
                await asyncio.gather(*(self._write_graph(js, name) for name in batch))
            except BaseException:
                self._graphs.update(n for n in batch if n in self.machines)
                raise
        while self._dirty:
            batch = [self._dirty.pop() for _ in range(min(CONCURRENT_WRITES, len(self._dirty)))]
            try:
                results = await asyncio.gather(
                    *(self._write_machine(js, kv, name) for name in batch),
                    return_exceptions=True,
                )
            except BaseException:  # cancelled: written again at the next flush
                self._dirty.update(batch)
                raise
            failed = [(n, r) for n, r in zip(batch, results, strict=True) if r is not None]
            if failed:
                self._dirty.update(n for n, _ in failed)  # written again, with the latest value
                error = failed[0][1]
                if isinstance(error, BaseException):
                    raise error

    # writes ------------------------------------------------------------------------------------
    async def _heartbeat(self, js: JetStreamContext, *, stopped: bool = False) -> None:
        now = self.clock.time()
        value = node_value(
            node=self.node,
            steward_version=__version__,
            started=self.started,
            heartbeat=now,
            interval=self.settings.heartbeat,
            machines=self.machines.values(),
        )
        if stopped:
            value["stopped"] = now
        subject = self._subject(node_key(self.node))
        ttl = None if self._ttl_refused else (self.settings.forget_after or None)
        try:
            await js.publish(subject, encode(value), msg_ttl=ttl)
        except Exception as exc:
            if ttl is None or "ttl" not in str(exc).lower():
                raise
            # a bucket created elsewhere without per-message TTLs: beat without one
            self._ttl_refused = True
            log.warning("fleet bucket refuses per-message TTLs: %s", exc)
            await js.publish(subject, encode(value))
        self.heartbeats += 1

    async def _write_graph(self, js: JetStreamContext, name: str) -> None:
        machine = self.machines.get(name)
        if machine is None:
            return
        await js.publish(
            self._subject(graph_key(self.node, name)), encode(graph_value(self.node, machine))
        )
        self.written += 1

    async def _write_machine(self, js: JetStreamContext, kv: KeyValue, name: str) -> None:
        from nats.js.errors import APIError

        key = machine_key(self.node, name)
        machine = self.machines.get(name)
        if machine is None:
            if key in self._revisions:
                await kv.delete(key)
                await kv.delete(graph_key(self.node, name))
                self._revisions.pop(key, None)
                self.written += 1
            return
        value = machine_value(self.node, machine, self.clock.time())
        revision = self._revisions.get(key)
        if revision is None:
            revision = await self._revision(kv, key, value)
            if revision is None:
                return
        headers = {"Nats-Expected-Last-Subject-Sequence": str(revision)}
        try:
            ack = await js.publish(self._subject(key), encode(value), headers=headers)
        except APIError as exc:
            if exc.err_code in WRONG_LAST_SEQUENCE:
                self._revisions.pop(key, None)  # someone else wrote it: look again
                self._dirty.add(name)
                return
            raise
        self._revisions[key] = ack.seq
        self.written += 1

    async def _revision(self, kv: KeyValue, key: str, ours: dict[str, Any]) -> int | None:
        """The key's revision to write over (0: none yet), or None if it holds a newer value."""
        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        try:
            entry = await kv.get(key)
        except KeyDeletedError as exc:
            return int(exc.entry.revision or 0) if exc.entry is not None else 0
        except KeyNotFoundError:
            return 0
        existing = _decode(entry.value)
        if existing is not None and is_newer(existing, ours):
            self.skipped_newer += 1
            log.warning(
                "fleet key %s holds a newer value (seq %s) than this node's (seq %s): "
                "another daemon may run under node name %r",
                key,
                existing.get("seq"),
                ours.get("seq"),
                self.node,
                extra={"key": key},
            )
            return None
        return int(entry.revision or 0)

    async def _resync(self, js: JetStreamContext, kv: KeyValue) -> None:
        """After a (re)connect: learn our keys' revisions, delete keys of machines gone,
        and skip keys that already hold our value."""
        from steward.fleet.feed import read_keys

        prefix = node_key(self.node) + "."
        for entry in await read_keys(kv, js, node_keys_filter(self.node)):
            rest = entry.key[len(prefix) :]
            if "." in rest:  # a graph key
                continue
            self._revisions[entry.key] = int(entry.revision or 0)
            name = untoken(rest)
            if entry.operation in ("DEL", "PURGE"):
                continue
            machine = self.machines.get(name)
            if machine is None:
                self._dirty.add(name)  # removed while we were away: delete its key
                continue
            existing = _decode(entry.value)
            ours = machine_value(self.node, machine, self.clock.time())
            if existing is not None and _same(existing, ours):
                self._dirty.discard(name)

    async def _bucket(self, js: JetStreamContext) -> KeyValue:
        from nats.js.api import KeyValueConfig
        from nats.js.errors import BucketNotFoundError, NotFoundError

        try:
            return await js.key_value(self.settings.bucket)
        except (BucketNotFoundError, NotFoundError):
            pass
        from nats.js.errors import KeyValueLimitMarkerTTLNotSupportedError

        log.info("creating fleet bucket %s", self.settings.bucket)
        config = KeyValueConfig(
            bucket=self.settings.bucket,
            history=1,
            replicas=self.settings.replicas or 1,
            # an expired heartbeat leaves a marker, so watchers see the node go
            limit_marker_ttl=max(60.0, self.settings.heartbeat * 2),
        )
        try:
            return await js.create_key_value(config)
        except KeyValueLimitMarkerTTLNotSupportedError:  # nats-server before 2.11
            config.limit_marker_ttl = None
            return await js.create_key_value(config)

    def _subject(self, key: str) -> str:
        return f"$KV.{self.settings.bucket}.{key}"


def _decode(raw: bytes | None) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw or b"")
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    strip = set(IGNORED_FIELDS)
    return {k: v for k, v in a.items() if k not in strip} == {
        k: v for k, v in b.items() if k not in strip
    }
