"""How fast a node delivers a backlog after an outage: a bounded rate, a random start, and
slowing down when the broker says it is overloaded.

A fleet that comes back after a broker outage must not flatten it: a node whose backlog is
more than one second's burst waits a random ``jitter`` before it starts on it, then sends at
most ``rate`` backlog events a second (a token bucket, one second of burst), halves that
rate each time the broker answers "too many requests" (HTTP-like 429 from JetStream, a slow
consumer, 503 while it is busy) and recovers by a tenth of it per batch that went through.
Live events (see ``NatsPublisher``) are not paced. Time and randomness are injected, so the
pacing is tested without sleeping.
"""

from __future__ import annotations

import random

from steward.clock import Clock
from steward.settings import DrainSettings as DrainSettings  # steward.yaml's; here as before

OVERLOAD_MARKERS = ("429", "too many requests", "slow consumer", "503")
MIN_RATE = 1.0  # events/s the pace never goes below


def is_overload(error: BaseException) -> bool:
    """Whether a publish failed because the broker is overloaded (rather than gone)."""
    code = getattr(error, "code", None)
    text = f"{code} {getattr(error, 'description', '')} {error}".lower()
    return code in (429, 503) or any(marker in text for marker in OVERLOAD_MARKERS)


class DrainPace:
    """A token bucket for backlog events, whose rate adapts to the broker's overload."""

    def __init__(self, settings: DrainSettings, *, clock: Clock, rng: random.Random) -> None:
        self.settings = settings
        self.rate = float(settings.rate)
        self._clock = clock
        self._rng = rng
        self._tokens = float(settings.rate)
        self._at = clock.monotonic()

    def start_delay(self, backlog: int) -> float:
        """How long to wait before starting on a backlog of ``backlog`` events: none if it
        fits in one second's burst (it adds no more than the rate allows anyway, and a machine's
        live events wait behind its backlog), else uniform in [0, jitter]."""
        if backlog <= self.settings.rate or self.settings.jitter <= 0:
            return 0.0
        return self._rng.uniform(0.0, self.settings.jitter)

    def wait_for(self, events: int) -> float:
        """Take ``events`` tokens; the seconds to wait before sending them (0: at once)."""
        now = self._clock.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= events
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def take(self, events: int) -> None:
        delay = self.wait_for(events)
        if delay > 0:
            await self._clock.sleep(delay)

    def overloaded(self) -> None:
        """The broker pushed back: halve the rate."""
        self.rate = max(MIN_RATE, self.rate / 2)
        self._tokens = min(self._tokens, 0.0)

    def went_through(self) -> None:
        """A batch was accepted: recover a tenth of the configured rate."""
        self.rate = min(float(self.settings.rate), self.rate + self.settings.rate / 10)
