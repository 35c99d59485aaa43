"""Where the daemon's NATS is and how to log in: configuration only, no I/O, and no import
of the NATS client (the CLI reads the config without paying for it). The classes are in
``steward.settings``, with the other settings ``steward.yaml`` names."""

from steward.settings import DAY, NatsSettings, StreamLimits

__all__ = ["DAY", "NatsSettings", "StreamLimits"]
