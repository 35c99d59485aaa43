"""What a component that uses NATS sees of the daemon's connection (``NatsLink``), and the
null object for a daemon with no NATS configured (``NO_NATS``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from steward.errors import NatsUnavailable

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext


@dataclass
class ConnectionState:
    """What status and metrics show of the connection."""

    connected: bool = False
    server: str | None = None
    reconnects: int = 0
    disconnects: int = 0
    errors: int = 0  # connection errors, and failures its users reported (publishes …)
    failed_connects: int = 0  # of those: (re)connect attempts that failed (no server there)
    since: float | None = None  # wall clock of the last (re)connect, while connected
    last_error: str | None = None
    last_success: float | None = None  # wall clock of the last acknowledged exchange


class NatsLink(Protocol):
    """The daemon's NATS connection as its users (the event publisher, watchers) see it.

    Nobody holds a connection of their own. ``client()`` waits while the connection is down
    (nats-py reconnects by itself) and raises ``NatsUnavailable`` when there is no NATS.
    """

    @property
    def configured(self) -> bool: ...

    @property
    def connected(self) -> bool: ...

    @property
    def state(self) -> ConnectionState: ...

    async def client(self) -> Client:
        """The connected client, once connected."""
        ...

    async def jetstream(self) -> JetStreamContext:
        """JetStream on the connected client, once connected."""
        ...

    def report(self, message: str) -> None:
        """A failure of something done over the connection (a publish, a stream call)."""
        ...

    def succeeded(self, at: float) -> None:
        """Something done over the connection was acknowledged at ``at`` (wall clock)."""
        ...

    def status(self) -> dict[str, Any] | None: ...


class NoNats:
    """No NATS configured: nothing connects, ``client()`` fails at once."""

    configured = False
    connected = False

    @property
    def state(self) -> ConnectionState:
        return ConnectionState()

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def client(self) -> Client:
        raise NatsUnavailable("no NATS is configured (nats.servers in steward.yaml)")

    async def jetstream(self) -> JetStreamContext:
        raise NatsUnavailable("no NATS is configured (nats.servers in steward.yaml)")

    def report(self, message: str) -> None:
        pass

    def succeeded(self, at: float) -> None:
        pass

    def status(self) -> dict[str, Any] | None:
        return None


NO_NATS: NatsLink = NoNats()
