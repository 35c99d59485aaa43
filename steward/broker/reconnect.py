"""Which server to reconnect to, and when: a fleet that lost its broker must not come back
in lockstep.

nats-py shuffles the server list (and the cluster members it discovers) but retries each
server after a fixed ``reconnect_time_wait`` with no jitter, so thousands of nodes cut off
together would knock on the same servers at the same instants. ``ReconnectPlan`` is its
``reconnect_to_server_handler``: it picks the server tried longest ago (never-tried ones
first, the one just lost last, ties at random) and waits until ``wait`` seconds have passed
since that server's last attempt, plus a random ``jitter``. Time and randomness are injected.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

from steward.clock import Clock


class PoolServer(Protocol):
    """A server of nats-py's pool, as the handler sees it (``nats.aio.client.Server``)."""

    @property
    def uri(self) -> Any: ...  # urllib.parse.ParseResult


class ReconnectPlan:
    def __init__(self, wait: float, jitter: float, *, clock: Clock, rng: random.Random) -> None:
        self.wait = wait
        self.jitter = jitter
        self._clock = clock
        self._rng = rng
        self._tried: dict[str, float] = {}  # netloc -> monotonic time of its last attempt

    def lost(self, netloc: str | None) -> None:
        """The connection to ``netloc`` just dropped: try it last, and not at once."""
        if netloc:
            self._tried[netloc] = self._clock.monotonic()

    def __call__(
        self, servers: Sequence[PoolServer], info: dict[str, Any]
    ) -> tuple[PoolServer | None, float]:
        """nats-py's handler: the server to try next and the seconds to wait before."""
        if not servers:
            return None, 0.0
        now = self._clock.monotonic()
        never = float("-inf")
        ranked = sorted(
            servers,
            key=lambda s: (self._tried.get(str(s.uri.netloc), never), self._rng.random()),
        )
        chosen = ranked[0]
        last = self._tried.get(str(chosen.uri.netloc))
        delay = 0.0 if last is None else max(0.0, last + self.wait - now)
        if self.jitter > 0:
            delay += self._rng.uniform(0.0, self.jitter)
        self._tried[str(chosen.uri.netloc)] = now + delay
        return chosen, delay
