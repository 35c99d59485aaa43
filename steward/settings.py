"""The daemon's settings as ``steward.yaml`` names them, and nothing else: values and their
defaults, no I/O, no behaviour.

They are here, apart from the modules that use them (the NATS connection, the outbox, the
drain, the fleet KV, history), because reading the config builds them all: every ``steward
status`` reads ``/etc/steward/steward.yaml`` for the socket's path, and importing those
modules for five small classes cost it ~10 ms, a sixth of the command (bench/cli_speed.py).
Each of those modules still exports its own, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

DAY = 86400.0


# nats: -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamLimits:
    """The limits steward gives the events stream when it creates it (``nats:`` in
    steward.yaml). Oldest events go first when one is reached (limits retention)."""

    max_age: float = 7 * DAY  # seconds an event is kept; 0: for ever
    # per replica; -1: no limit. JetStream reserves it on each replica's server at creation
    # and refuses more than the server can store, so the default stays small: a fleet sets
    # nodes x 68 MB for 7 days of typical nodes (docs/events.md, Sizing)
    max_bytes: int = 10 * 1024**3
    max_msgs_per_subject: int = 100_000  # per node x machine x kind (watcher); -1: no limit
    duplicate_window: float = 120.0  # seconds the server remembers Nats-Msg-Id (retries)


@dataclass(frozen=True)
class NatsSettings:
    servers: tuple[str, ...] = ()
    stream: str | None = None  # JetStream stream for events; None = core NATS
    credentials: str | None = None  # .creds file
    nkey: str | None = None  # nkey seed file
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # every stream and bucket steward creates gets this many copies (3 on a cluster)
    replicas: int = 1
    reconnect_wait: float = 1.0  # seconds before trying the same server again
    reconnect_jitter: float = 1.0  # up to this many seconds more, at random, per attempt
    # after 30 s cut off, the wait grows with the outage up to this (0: never grows): a fleet
    # returns spread over it (docs/events.md, "After an outage")
    reconnect_max_wait: float = 20.0
    limits: StreamLimits = field(default_factory=StreamLimits)

    @property
    def enabled(self) -> bool:
        return bool(self.servers)

    def tls_context(self) -> ssl.SSLContext | None:
        if not (self.tls_ca or self.tls_cert):
            return None
        import ssl

        ctx = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx


# events: --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutboxLimits:
    max_events: int = 100_000
    max_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class DrainSettings:
    rate: int = 200  # backlog events per second (events.drain_rate)
    jitter: float = 5.0  # seconds: the most a node waits before it starts on a backlog


# fleet: ---------------------------------------------------------------------------------------
DEFAULT_BUCKET = "STEWARD_FLEET"
DEFAULT_HEARTBEAT = 30.0  # seconds between two heartbeats of a node
DEFAULT_FORGET_AFTER = 7 * DAY  # seconds: the node key's TTL
BUCKET_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class FleetSettings:
    """``fleet:`` in steward.yaml; used only when NATS is configured."""

    enabled: bool = True
    bucket: str = DEFAULT_BUCKET
    heartbeat: float = DEFAULT_HEARTBEAT
    forget_after: float = DEFAULT_FORGET_AFTER  # the node key's TTL; 0: none
    replicas: int | None = None  # of the bucket, when a daemon creates it; None: nats.replicas


# history: -------------------------------------------------------------------------------------
DEFAULT_HISTORY_KEEP = 100  # transitions kept per machine on disk (steward.yaml history.keep)
