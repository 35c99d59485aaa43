"""Drain the outbox to NATS, in order, removing an event only once NATS confirmed it.

With a JetStream ``stream`` configured each event is published with ``Nats-Msg-Id`` = its
id and removed after the ack (so a retry after a crash is deduplicated by the server).
Publishes are pipelined, up to ``WINDOW`` in flight but never two of the same machine: if one
fails while later ones are stored, the retry repeats those later ones (JetStream drops the
repeats by id) and only events of other machines can have been stored ahead of the failed
one, so each machine's events stay in order in the stream. Without a stream, events go out on
core NATS and are removed after a successful flush. The first connection is retried with
backoff; after that nats-py's own reconnect logic runs, with all four callbacks wired to logs
and counters. The publisher never holds up a machine: machines only write to the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from steward.errors import StoreError
from steward.events.hub import EventHub
from steward.machine.persistence import OutboxRow, OutboxStats

log = logging.getLogger("steward.events")

BATCH = 256
WINDOW = 128  # JetStream publishes awaiting their ack at once (at most one per machine)
PUBLISH_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2
BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
DUPLICATE_WINDOW = 120.0  # seconds JetStream remembers message ids


@dataclass(frozen=True)
class NatsSettings:
    servers: tuple[str, ...] = ()
    stream: str | None = None  # JetStream stream; None = core NATS
    credentials: str | None = None  # .creds file
    nkey: str | None = None  # nkey seed file
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.servers)

    def tls_context(self) -> ssl.SSLContext | None:
        if not (self.tls_ca or self.tls_cert):
            return None
        ctx = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx


class Outbox(Protocol):
    async def outbox_peek(self, limit: int) -> list[OutboxRow]: ...

    async def outbox_remove(self, upto_rowid: int) -> None: ...

    async def outbox_stats(self) -> OutboxStats: ...


@dataclass
class PublisherState:
    connected: bool = False
    server: str | None = None
    published: int = 0
    reconnects: int = 0
    disconnects: int = 0
    last_error: str | None = None
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class NatsPublisher:
    def __init__(
        self,
        settings: NatsSettings,
        outbox: Outbox,
        hub: EventHub,
        *,
        stream_subjects: list[str],
        client_name: str = "steward",
    ) -> None:
        self.settings = settings
        self.state = PublisherState()
        self._outbox = outbox
        self._hub = hub
        self._subjects = stream_subjects
        self._name = client_name
        self._nc: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._online = asyncio.Event()

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nats-publisher")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The publisher only ends when stopped; anything else is a bug to make loud, since
        events would then wait in the outbox with nothing to say why."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self._failed(f"the NATS publisher stopped: {type(exc).__name__}: {exc}")
        log.error("the NATS publisher stopped; events stay in the outbox", exc_info=exc)

    async def stop(self, grace: float) -> None:
        """Give the publisher up to ``grace`` seconds to deliver what is left, then close."""
        if self._task is None:
            return
        if self.state.connected:
            deadline = asyncio.get_running_loop().time() + grace
            while asyncio.get_running_loop().time() < deadline and self.state.connected:
                stats = await self._outbox.outbox_stats()
                if stats.events == 0:
                    break
                await asyncio.sleep(0.05)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 2)

    # the loop --------------------------------------------------------------------------------
    async def _run(self) -> None:
        self._nc = await self._connect()
        backoff = BACKOFF_START
        stream_ok = False
        while True:
            await self._online.wait()
            if self.settings.stream and not stream_ok:
                # also after a failure: the server may have come back with a wiped store
                await self._ensure_stream(self._nc)
                stream_ok = True
            self._hub.outbox_changed.clear()
            try:
                rows = await self._outbox.outbox_peek(BATCH)
                if not rows:
                    await self._hub.outbox_changed.wait()
                    continue
                sent_upto = await self._send(self._nc, rows)
                if sent_upto is not None:
                    await self._outbox.outbox_remove(sent_upto)
            except StoreError as exc:
                # e.g. the disk is full: what was sent stays in the outbox and is sent again
                # later (JetStream drops the repeat by its Nats-Msg-Id)
                self._failed(f"outbox: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            if sent_upto == rows[-1].rowid:
                backoff = BACKOFF_START
            else:
                stream_ok = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _send(self, nc: Client, rows: list[OutboxRow]) -> int | None:
        """Publish rows; return the last rowid of the prefix NATS confirmed (None if none)."""
        last: int | None = None
        try:
            if self.settings.stream:
                js = nc.jetstream()
                for window in _windows(rows):
                    acks = await asyncio.gather(
                        *(self._publish(js, row) for row in window), return_exceptions=True
                    )
                    for row, ack in zip(window, acks, strict=True):
                        if isinstance(ack, BaseException):
                            raise ack
                        last = row.rowid
                        self.state.published += 1
            else:
                for row in rows:
                    await nc.publish(row.subject, row.body, headers={"Nats-Msg-Id": row.event_id})
                await nc.flush(timeout=int(PUBLISH_TIMEOUT))
                last = rows[-1].rowid
                self.state.published += len(rows)
        except (NatsError, TimeoutError, OSError) as exc:
            self._failed(f"publish failed: {type(exc).__name__}: {exc}")
        return last

    async def _publish(self, js: Any, row: OutboxRow) -> None:
        await js.publish(
            row.subject,
            row.body,
            timeout=PUBLISH_TIMEOUT,
            stream=self.settings.stream,
            headers={"Nats-Msg-Id": row.event_id},
        )

    # connection ------------------------------------------------------------------------------
    async def _connect(self) -> Client:
        backoff = BACKOFF_START
        while True:
            try:
                nc = await nats.connect(**self._options())
            except Exception as exc:  # nats-py raises many types on a failed first connect
                self._failed(f"cannot connect to NATS {', '.join(self.settings.servers)}: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self.state.connected = True
            self.state.server = str(nc.connected_url.netloc) if nc.connected_url else None
            self._online.set()
            log.info("connected to NATS", extra={"server": self.state.server})
            return nc

    def _options(self) -> dict[str, Any]:
        s = self.settings
        opts: dict[str, Any] = {
            "servers": list(s.servers),
            "name": self._name,
            "connect_timeout": CONNECT_TIMEOUT,
            "reconnect_time_wait": 1,
            "max_reconnect_attempts": -1,
            "allow_reconnect": True,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
            "closed_cb": self._on_closed,
        }
        if s.credentials:
            opts["user_credentials"] = s.credentials
        if s.nkey:
            opts["nkeys_seed"] = s.nkey
        if s.user:
            opts["user"], opts["password"] = s.user, s.password
        if s.token:
            opts["token"] = s.token
        tls = s.tls_context()
        if tls is not None:
            opts["tls"] = tls
        return opts

    async def _ensure_stream(self, nc: Client) -> None:
        assert self.settings.stream is not None
        js = nc.jetstream()
        backoff = BACKOFF_START
        while True:
            try:
                try:
                    await js.stream_info(self.settings.stream)
                except NotFoundError:
                    # inside the outer try: a refused creation (e.g. the subjects overlap
                    # another stream) is retried and reported, not the publisher's end
                    await js.add_stream(
                        name=self.settings.stream,
                        subjects=self._subjects,
                        duplicate_window=DUPLICATE_WINDOW,
                    )
                    log.info(
                        "created JetStream stream",
                        extra={"stream": self.settings.stream, "subjects": self._subjects},
                    )
                return
            except (NatsError, TimeoutError) as exc:
                self._failed(f"JetStream stream {self.settings.stream}: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _failed(self, message: str) -> None:
        self.state.errors += 1
        if message != self.state.last_error:
            log.warning(message, extra={"error": message})
        self.state.last_error = message

    # nats-py callbacks -----------------------------------------------------------------------
    async def _on_error(self, exc: Exception) -> None:
        self._failed(f"NATS error: {type(exc).__name__}: {exc}")

    async def _on_disconnected(self) -> None:
        self.state.connected = False
        self.state.disconnects += 1
        self._online.clear()
        log.warning("disconnected from NATS; events wait in the outbox", extra={})

    async def _on_reconnected(self) -> None:
        nc = self._nc
        self.state.connected = True
        self.state.reconnects += 1
        if nc is not None and nc.connected_url is not None:
            self.state.server = str(nc.connected_url.netloc)
        self._online.set()
        log.info("reconnected to NATS", extra={"server": self.state.server})

    async def _on_closed(self) -> None:
        self.state.connected = False
        self._online.clear()
        log.info("NATS connection closed", extra={})

    def status(self) -> dict[str, Any]:
        s = self.state
        return {
            "servers": list(self.settings.servers),
            "stream": self.settings.stream,
            "connected": s.connected,
            "server": s.server,
            "published": s.published,
            "reconnects": s.reconnects,
            "disconnects": s.disconnects,
            "errors": s.errors,
            "last_error": s.last_error,
        }


def _windows(rows: list[OutboxRow]) -> Iterator[list[OutboxRow]]:
    """Consecutive runs of ``rows`` with at most WINDOW rows and one row per machine each."""
    window: list[OutboxRow] = []
    machines: set[str] = set()
    for row in rows:
        if row.machine in machines or len(window) >= WINDOW:
            yield window
            window, machines = [], set()
        window.append(row)
        machines.add(row.machine)
    if window:
        yield window
