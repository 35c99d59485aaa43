"""Where the daemon's NATS is and how to log in: configuration only, no I/O, and no import
of the NATS client (the CLI reads the config without paying for it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl


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
