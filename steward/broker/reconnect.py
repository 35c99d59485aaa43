"""Which server to reconnect to, and when: a fleet that lost its broker must not come back
in lockstep, nor knock on a dead broker every second for the length of a long outage.

nats-py shuffles the server list (and the cluster members it discovers) but retries each
server after a fixed ``reconnect_time_wait`` with no jitter, so thousands of nodes cut off
together would knock on the same servers at the same instants. ``ReconnectPlan`` is its
``reconnect_to_server_handler``: it picks the server tried longest ago (never-tried ones
first, the one just lost last, ties at random) and waits until ``wait`` seconds have passed
since that server's last attempt, plus a random ``jitter``.

Once the node has been cut off for ``GROW_AFTER`` seconds (a long outage: a restarted server
or a failover is over well before), the wait grows with the outage: a random time in
``[c/2, c]`` with ``c`` = half the time cut off so far, at most ``max_wait``. So a node never
waits more than half as long as the outage has lasted, a long outage costs a node one attempt
every ~``0.75 * max_wait`` seconds instead of one a second, and a fleet cut off together
comes back spread over ``max_wait`` seconds (docs/events.md, "After an outage"). A successful
connect starts over. Time and randomness are injected.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

from steward.clock import Clock

GROW_AFTER = 30.0  # seconds cut off from every server before the wait grows


class PoolServer(Protocol):
    """A server of nats-py's pool, as the handler sees it (``nats.aio.client.Server``)."""

    @property
    def uri(self) -> Any: ...  # urllib.parse.ParseResult


class ReconnectPlan:
    def __init__(
        self,
        wait: float,
        jitter: float,
        *,
        max_wait: float = 0.0,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.wait = wait
        self.jitter = jitter
        self.max_wait = max_wait  # 0: the wait never grows
        self._clock = clock
        self._rng = rng
        self._tried: dict[str, float] = {}  # netloc -> monotonic time of its last attempt
        self._down_since: float | None = None  # monotonic: when the connection was lost

    def lost(self, netloc: str | None) -> None:
        """The connection to ``netloc`` just dropped: try it last, and not at once."""
        now = self._clock.monotonic()
        if self._down_since is None:
            self._down_since = now
        if netloc:
            self._tried[netloc] = now

    def connected(self) -> None:
        """A (re)connect succeeded: the next outage starts with short waits again."""
        self._down_since = None

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
        ceiling = self.grown_wait(now)
        if ceiling > 0:
            delay = max(delay, self._rng.uniform(ceiling / 2, ceiling))
        elif self.jitter > 0:
            delay += self._rng.uniform(0.0, self.jitter)
        self._tried[str(chosen.uri.netloc)] = now + delay
        return chosen, delay

    def grown_wait(self, now: float) -> float:
        """The most a node waits now in a long outage; 0 before ``GROW_AFTER`` (or when
        ``max_wait`` is 0): then the plain ``wait`` + ``jitter`` apply."""
        if self._down_since is None or self.max_wait <= 0:
            return 0.0
        down = now - self._down_since
        if down < GROW_AFTER:
            return 0.0
        return max(self.wait + self.jitter, min(self.max_wait, down / 2))
