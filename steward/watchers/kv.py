"""kv: one key of a JetStream key-value bucket, read into machine data (Choria's kv watcher).

Each check reads the key (``bucket``, ``key``) and stores its value in the machine's data under
``<bucket>_<key>`` (``store_key`` replaces the key part; ``bucket_prefix: false`` drops the
bucket part). A changed value, or a deleted key that had one, fires ``success_transition``;
a read that fails (NATS away, no such bucket, a value that cannot be decoded or queried) is an
error result and fires ``fail_transition``; anything else fires nothing. What counts as a
change is ``kv_value.judge``; how a value becomes data is ``kv_value.decode``.

The first check seeds "what was seen" from the machine's own (persisted) data, so a daemon
restart with an unchanged value is no change.

``mode: poll`` (Choria's only mode) reads on activation and every ``interval``. ``mode: watch``
(a steward addition) also follows the key with a JetStream KV watch and runs the check as soon
as it changes; ``interval`` stays a backstop. The follower (a task per active watcher) sets the
watch up again when the connection comes back, when the bucket is deleted or re-created (it
compares the stream's creation time every ``WATCH_CHECK`` seconds), or when it fails (after
0.5s, 1s, 2s … ``WATCH_RETRY_MAX``); each time it wakes the check, which catches up with what
changed meanwhile. ``republish_trigger`` (a subject a bucket republishes to) wakes the check on
every message too.

A read waits at most ``CONNECT_WAIT`` for a connection that is down, then reports the error;
failed reads are retried after 1s, 2s, 4s … ``RETRY_MAX``, so the watcher recovers by itself.
Without NATS configured the machine loads and the watcher fails with ``no NATS is configured``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from steward.clock import Cancellable
from steward.errors import NatsUnavailable
from steward.gjson import Path, PathError
from steward.machine.source import Fields
from steward.templates import Template, TemplateError
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.kv_value import MISSING, Change, Read, Seen, UnusableValue, decode, judge

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.kv import KeyValue

log = logging.getLogger("steward.watcher.kv")

TYPE = "kv"
POLL_INTERVAL = 30.0  # poll mode without an interval (Choria has no default: it needs one)
WATCH_INTERVAL = 300.0  # watch mode without an interval: the backstop read
CONNECT_WAIT = 2.0  # how long a read waits for a NATS connection that is down
RETRY_MAX = 30.0  # the longest pause before a failed read is tried again
WATCH_CHECK = 5.0  # how often a watch checks it still follows the same bucket and connection
WATCH_RETRY_MAX = 5.0  # the longest pause before a failed watch is set up again
_BUCKET_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
_KEY_RE = re.compile(r"^[-/_=.a-zA-Z0-9]+$")


class Mode(StrEnum):
    POLL = "poll"
    WATCH = "watch"


class KvUnreachable(Exception):
    """The key could not be read now (NATS away, no such bucket, a timeout); try again."""


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid KV key, or None."""
    if not _KEY_RE.match(key) or key.startswith(".") or key.endswith("."):
        return f"not a valid key: {key!r} (letters, digits, '-', '/', '_', '=' and inner dots)"
    return None


@dataclass(frozen=True)
class KvProperties:
    bucket: str
    key: Template
    mode: Mode = Mode.POLL
    bucket_prefix: bool = True
    store_key: Template | None = None
    on_successful_get: bool = False
    on_matching_update: bool = False
    query: Path | None = None
    republish_trigger: Template | None = None

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        bucket = fields.string("bucket", required=True) or ""
        if bucket and not _BUCKET_RE.match(bucket):
            fields.error("bucket", f"not a bucket name: {bucket!r} (letters, digits, '-', '_')")
        key = fields.template("key", required=True)
        if key is not None and key.static and (problem := key_problem(key.source)):
            fields.error("key", problem)
        mode = fields.choice("mode", [m.value for m in Mode])
        query: Path | None = None
        text = fields.string("query")
        if text is not None:
            try:
                query = Path.parse(text)
            except PathError as exc:
                fields.error("query", f"invalid GJSON path: {exc}")
        if fields.boolean("hiera_config", False):
            fields.error(
                "hiera_config",
                "true is not supported: steward does not resolve CCM hiera documents",
            )
        props = cls(
            bucket=bucket,
            key=key or Template(""),
            mode=Mode(mode) if mode else Mode.POLL,
            bucket_prefix=fields.boolean("bucket_prefix", True),
            store_key=fields.template("store_key"),
            on_successful_get=fields.boolean("on_successful_get", False),
            on_matching_update=fields.boolean("on_matching_update", False),
            query=query,
            republish_trigger=fields.template("republish_trigger"),
        )
        fields.finish(" in kv properties")
        return props

    @property
    def stream(self) -> str:
        return f"KV_{self.bucket}"

    def data_key(self, facts: Mapping[str, Any], data: Mapping[str, Any]) -> str:
        """The machine data key the value is stored under."""
        name = (self.store_key or self.key).render(facts, data)
        return f"{self.bucket}_{name}" if self.bucket_prefix else name


class KvWatcher(Watcher):
    TYPE = TYPE
    Properties = KvProperties

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: Seen | None = None  # None until the first check reads the machine's data
        self._failures = 0  # failed reads in a row; sets the retry pause
        self._retry: Cancellable | None = None
        self._follower: asyncio.Task[None] | None = None
        self.watching = False  # a KV watch (or republish subscription) is set up
        self.watch_error: str | None = None  # why the last one failed

    @property
    def props(self) -> KvProperties:
        p = self.spec.properties
        assert isinstance(p, KvProperties)
        return p

    @property
    def interval(self) -> float | None:
        if self.spec.interval is not None:
            return self.spec.interval
        return WATCH_INTERVAL if self.props.mode is Mode.WATCH else POLL_INTERVAL

    # lifecycle -------------------------------------------------------------------------------
    def activate(self) -> None:
        follows = self.props.mode is Mode.WATCH or self.props.republish_trigger is not None
        if follows and self._follower is None:
            self._follower = asyncio.get_running_loop().create_task(
                self._follow(), name=f"kv-follow:{self.machine.name}/{self.name}"
            )
        super().activate()

    def deactivate(self) -> None:
        self._leave()
        super().deactivate()

    async def close(self) -> None:
        follower = self._leave()
        if follower is not None:
            await asyncio.gather(follower, return_exceptions=True)
        await super().close()

    def _leave(self) -> asyncio.Task[None] | None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
        return follower

    # the check -------------------------------------------------------------------------------
    async def check(self) -> WatcherResult:
        props = self.props
        facts, data = self.context.node.facts.current, self.machine.data_snapshot()
        try:
            key = props.key.render(facts, data)
            data_key = props.data_key(facts, data)
        except TemplateError as exc:
            return self._error(f"cannot render the key: {exc.message}", props.key.source)
        problem = key_problem(key)
        if problem is not None:
            return self._error(problem, key)
        if self._seen is None:  # what the machine already holds (across restarts) is no news
            self._seen = Seen(data.get(data_key, MISSING))
        try:
            read = await self._read(key)
        except NatsUnavailable as exc:  # none configured, or the daemon is stopping
            return self._error(str(exc), key)
        except KvUnreachable as exc:
            self._retry_later()
            return self._error(str(exc), key)
        except UnusableValue as exc:
            return self._error(f"{props.bucket}.{key}: {exc}", key)
        self._failures = 0
        change, self._seen = judge(
            self._seen,
            read,
            on_successful_get=props.on_successful_get,
            on_matching_update=props.on_matching_update,
        )
        payload = self._payload(change.value, key, data_key)
        where = f"{props.bucket}.{key}"
        if change is Change.NONE:
            return WatcherResult(Outcome.UNCHANGED, f"{where} unchanged", payload=payload)
        if change is Change.DELETED:
            return WatcherResult(
                Outcome.SUCCESS, f"{where} deleted", data_removed=(data_key,), payload=payload
            )
        assert read is not None
        detail = f"{where} {change.value} (revision {read.revision})"
        return WatcherResult(Outcome.SUCCESS, detail, data={data_key: read.value}, payload=payload)

    async def _read(self, key: str) -> Read | None:
        """The key's decoded value and revision, or None when it is missing (or deleted)."""
        from nats.errors import Error as NatsError
        from nats.js.errors import BucketNotFoundError, KeyNotFoundError

        link = self.context.nats
        bucket = self.props.bucket
        try:
            async with asyncio.timeout(CONNECT_WAIT):
                js = await link.jetstream()
        except TimeoutError:
            why = link.state.last_error
            raise KvUnreachable("NATS is not connected" + (f" ({why})" if why else "")) from None
        try:
            kv: KeyValue = await js.key_value(bucket)
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        except BucketNotFoundError:
            raise KvUnreachable(f"bucket {bucket!r} does not exist") from None
        except (NatsError, TimeoutError) as exc:
            raise KvUnreachable(f"cannot read {bucket}.{key}: {_describe(exc)}") from exc
        return Read(decode(entry.value or b"", self.props.query), entry.revision or 0)

    def _retry_later(self) -> None:
        self._failures += 1
        if self._retry is not None:
            self._retry.cancel()
        pause = min(RETRY_MAX, 2.0 ** (self._failures - 1))
        self._retry = self.clock.call_later(pause, self.wake)

    def _error(self, message: str, key: str) -> WatcherResult:
        data_key = ""
        with contextlib.suppress(TemplateError):
            data_key = self.props.data_key(
                self.context.node.facts.current, self.machine.data_snapshot()
            )
        payload = self._payload("error", key, data_key, error=message)
        return WatcherResult(Outcome.ERROR, message, payload=payload)

    def _payload(
        self, state: str, key: str, data_key: str, *, error: str | None = None
    ) -> dict[str, Any]:
        seen = self._seen or Seen()
        return {
            "state": state,
            "bucket": self.props.bucket,
            "key": key,
            "mode": self.props.mode.value,
            "data_key": data_key,
            "revision": seen.revision or None,
            "watching": self.watching if self._follower is not None else None,
            "watch_error": self.watch_error,
            "error": error,
        }

    # watch mode and republish triggers -------------------------------------------------------
    async def _follow(self) -> None:
        """Wake the check whenever the key changes, for as long as the watcher is active."""
        failures = 0
        while True:
            try:
                await self._follow_once()
                failures = 0
            except NatsUnavailable:
                return  # no NATS, or the daemon is stopping: the check says so
            except Exception as exc:  # any failure: report it, set the watch up again later
                failures += 1
                self.watch_error = _describe(exc)
                log.debug(
                    "kv watch failed: %s",
                    self.watch_error,
                    extra={"machine": self.machine.name, "watcher": self.name},
                )
            self.wake()  # the check reports what holds now (an error while NATS is away)
            if failures:
                await self.clock.sleep(min(WATCH_RETRY_MAX, 0.25 * 2.0**failures))

    async def _follow_once(self) -> None:
        """Set up the watch, wake the check on every update; return when it must be set up
        again (the connection came back, the bucket was re-created, the key changed)."""
        from nats.errors import TimeoutError as NatsTimeout

        props, link = self.props, self.context.nats
        client = await link.client()  # waits while the connection is down
        reconnects = link.state.reconnects
        js = client.jetstream()
        facts, data = self.context.node.facts.current, self.machine.data_snapshot()
        key = props.key.render(facts, data)
        stack = contextlib.AsyncExitStack()
        async with stack:
            if props.republish_trigger is not None:
                subject = props.republish_trigger.render(facts, data)
                sub = await client.subscribe(subject, cb=self._on_republish)
                stack.push_async_callback(_quietly, sub.unsubscribe)
            watch = None
            created = None
            if props.mode is Mode.WATCH:
                kv = await js.key_value(props.bucket)
                created = (await js.stream_info(props.stream)).created
                watch = await kv.watch(key)
                stack.push_async_callback(_quietly, watch.stop)
            self.watching, self.watch_error = True, None
            self.wake()  # catch up with whatever changed while nothing was watched
            next_check = self.clock.monotonic() + WATCH_CHECK
            while True:
                if watch is None:
                    await self.clock.sleep(WATCH_CHECK)
                else:
                    wait = max(0.0, next_check - self.clock.monotonic())
                    try:
                        entry = await watch.updates(timeout=wait)  # type: ignore[no-untyped-call]
                    except NatsTimeout:
                        entry = None
                    if entry is not None:
                        self.wake()
                    if self.clock.monotonic() < next_check:
                        continue
                next_check = self.clock.monotonic() + WATCH_CHECK
                if not link.connected or link.state.reconnects != reconnects:
                    return
                again = props.key.render(
                    self.context.node.facts.current, self.machine.data_snapshot()
                )
                if again != key:
                    return
                if watch is not None and (await js.stream_info(props.stream)).created != created:
                    return

    async def _on_republish(self, msg: Msg) -> None:
        if msg.headers and "Nats-Stream" in msg.headers:  # only what a stream republished
            self.wake()


async def _quietly(close: Any) -> None:
    with contextlib.suppress(Exception):
        await close()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["TYPE", "KvProperties", "KvWatcher", "Mode", "key_problem"]
