"""The daemon's NATS: its settings, the one connection it owns, and what users of that
connection see. Import ``NatsConnection`` from ``steward.broker.connection`` (it loads the
NATS client); this package itself stays light."""

from steward.broker.link import NO_NATS, ConnectionState, NatsLink, NoNats
from steward.broker.settings import NatsSettings

__all__ = ["NO_NATS", "ConnectionState", "NatsLink", "NatsSettings", "NoNats"]
