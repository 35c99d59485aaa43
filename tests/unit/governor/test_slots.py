"""Joining a governor without a broker: the retry schedule (pure), and the errors a join
reports before it ever reaches NATS. Joins against a real nats-server are in
tests/integration/test_governor.py."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from steward.broker.link import NoNats
from steward.clock import SystemClock
from steward.errors import GovernorError, NatsUnavailable, NoSlot
from steward.governor.slots import WATCHER_BACKOFF, Backoff, join


def test_the_watcher_schedule_is_choria_s() -> None:
    rng = random.Random(1)
    assert WATCHER_BACKOFF.delay(1, rng) == 0.25  # the governor's interval, not jittered
    second = [WATCHER_BACKOFF.delay(2, rng) for _ in range(200)]
    assert min(second) >= 0.375 and max(second) < 1.125  # jitter(750ms): [375ms, 1125ms)
    late = [WATCHER_BACKOFF.delay(50, rng) for _ in range(200)]
    assert min(late) >= 2.5 and max(late) < 7.5  # the last step, 5s, repeats
    assert len({round(d, 6) for d in late}) > 100  # jittered: workers do not move in step


def test_a_fixed_interval_never_changes() -> None:
    rng = random.Random(1)
    assert {Backoff(5.0).delay(n, rng) for n in range(1, 20)} == {5.0}


class Down:
    """A connection that never comes: ``client()`` waits for ever, as the daemon's does
    while NATS is down."""

    async def client(self) -> Any:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_without_nats_a_join_fails_at_once() -> None:
    with pytest.raises(NatsUnavailable, match="no NATS is configured"):
        await join(NoNats(), "cron", "me", max_wait=60, clock=SystemClock(), rng=random.Random())


async def test_a_join_while_nats_is_down_ends_at_max_wait_saying_why() -> None:
    with pytest.raises(NoSlot) as caught:
        await join(Down(), "cron", "me", max_wait=0.05, clock=SystemClock(), rng=random.Random())
    assert str(caught.value) == (
        "no slot in governor 'cron' within 0.05s: waiting for the NATS connection (0 tries)"
    )


async def test_an_invalid_name_never_reaches_nats() -> None:
    with pytest.raises(GovernorError, match=r"contains '\.'"):
        await join(Down(), "a.b", "me", max_wait=60, clock=SystemClock(), rng=random.Random())
