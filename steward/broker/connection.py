"""The daemon's one NATS connection.

``start()`` connects in the background, retrying the first connection with backoff (nats-py
would otherwise retry it silently for ever, or give up); after that nats-py's own reconnect
logic runs. All four callbacks are wired to logs and to ``state``, which status and metrics
read. Users wait in ``client()`` while the connection is down; nobody blocks the daemon's
start on it, and machines never wait for NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from steward.broker.link import ConnectionState
from steward.broker.nats_import import import_nats
from steward.broker.reconnect import ReconnectPlan
from steward.broker.settings import NatsSettings
from steward.clock import Clock, SystemClock
from steward.errors import NatsUnavailable

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

log = logging.getLogger("steward.nats")

CONNECT_TIMEOUT = 2
BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
CLOSE_TIMEOUT = 2.0


class NatsConnection:
    """A ``NatsLink`` to the configured servers. ``start()``, then ``stop()``."""

    configured = True

    def __init__(
        self,
        settings: NatsSettings,
        *,
        name: str = "steward",
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        import_nats(settings.servers)  # before anything else imports it: aiohttp only for ws://
        self.settings = settings
        self.name = name
        self.reconnect_plan = ReconnectPlan(
            settings.reconnect_wait,
            settings.reconnect_jitter,
            max_wait=settings.reconnect_max_wait,
            clock=clock or SystemClock(),
            rng=rng or random.Random(),
        )
        self.state = ConnectionState()
        self._nc: Client | None = None
        self._online: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._online = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._connect(), name="nats-connect")

    async def stop(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await nc.close()
        self.state.connected = False
        if self._online is not None:
            self._online.set()  # whoever waits in client() wakes up and hears it is closed

    # what users see --------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.state.connected

    async def client(self) -> Client:
        if self._online is None or self._closed:
            raise NatsUnavailable("the NATS connection is not open")
        await self._online.wait()
        if self._nc is None or self._closed:
            raise NatsUnavailable("the NATS connection was closed")
        return self._nc

    async def jetstream(self) -> JetStreamContext:
        return (await self.client()).jetstream()

    def report(self, message: str) -> None:
        self.state.errors += 1
        if message != self.state.last_error:
            log.warning(message, extra={"error": message})
        self.state.last_error = message

    def succeeded(self, at: float) -> None:
        self.state.last_success = at

    def status(self) -> dict[str, Any]:
        s = self.state
        return {
            "servers": list(self.settings.servers),
            "discovered": self._discovered(),
            "connected": s.connected,
            "server": s.server,
            "reconnects": s.reconnects,
            "disconnects": s.disconnects,
            "errors": s.errors,
            "failed_connects": s.failed_connects,
            "connected_since": s.since,
            "last_error": s.last_error,
        }

    def _discovered(self) -> list[str]:
        if self._nc is None:
            return []
        return [str(u.netloc) for u in self._nc.discovered_servers]

    # connecting ------------------------------------------------------------------------------
    async def _connect(self) -> None:
        import nats  # imported by import_nats in __init__

        backoff = BACKOFF_START
        while True:
            try:
                nc = await nats.connect(**self._options())
            except Exception as exc:  # nats-py raises many types on a failed first connect
                servers = ", ".join(self.settings.servers)
                self.state.failed_connects += 1
                self.report(f"cannot connect to NATS {servers}: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self._nc = nc
            self._up(nc)
            log.info("connected to NATS", extra={"server": self.state.server})
            return

    def _up(self, nc: Client) -> None:
        self.state.connected = True
        self.state.since = time.time()
        if nc.connected_url is not None:
            self.state.server = str(nc.connected_url.netloc)
        assert self._online is not None
        self._online.set()

    def _down(self) -> None:
        self.state.connected = False
        self.state.since = None
        if self._online is not None:
            self._online.clear()

    def _options(self) -> dict[str, Any]:
        s = self.settings
        opts: dict[str, Any] = {
            "servers": list(s.servers),
            "name": self.name,
            "connect_timeout": CONNECT_TIMEOUT,
            # the list (and the cluster members the servers announce, which nats-py adds to
            # it) in random order; reconnects spaced and jittered by the plan
            "dont_randomize": False,
            "reconnect_time_wait": s.reconnect_wait,
            "reconnect_to_server_handler": self.reconnect_plan,
            "max_reconnect_attempts": -1,
            "allow_reconnect": True,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
            "closed_cb": self._on_closed,
            "discovered_server_cb": self._on_discovered,
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

    # nats-py callbacks -----------------------------------------------------------------------
    async def _on_error(self, exc: Exception) -> None:
        if not self.state.connected:  # nats-py calls it for each failed reconnect attempt
            self.state.failed_connects += 1
        self.report(f"NATS error: {type(exc).__name__}: {exc}")

    async def _on_disconnected(self) -> None:
        self.reconnect_plan.lost(self.state.server)
        self._down()
        self.state.disconnects += 1
        log.warning("disconnected from NATS; events wait in the outbox", extra={})

    async def _on_reconnected(self) -> None:
        self.state.reconnects += 1
        self.reconnect_plan.connected()
        if self._nc is not None:
            self._up(self._nc)
        log.info("reconnected to NATS", extra={"server": self.state.server})

    async def _on_discovered(self) -> None:
        if self._nc is not None:
            found = [str(u.netloc) for u in self._nc.discovered_servers]
            log.info("NATS cluster members discovered", extra={"servers": found})

    async def _on_closed(self) -> None:
        self._down()
        log.info("NATS connection closed", extra={})
