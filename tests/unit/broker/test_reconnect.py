"""ReconnectPlan: which server nats-py reconnects to next, and after how long."""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import ParseResult, urlparse

from steward.broker.connection import NatsConnection
from steward.broker.reconnect import ReconnectPlan
from steward.broker.settings import NatsSettings
from tests.support.fakes import FakeClock


@dataclass
class Pooled:
    uri: ParseResult


POOL = [Pooled(urlparse(f"nats://127.0.0.1:{p}")) for p in (4222, 4223, 4224)]


def plan(
    clock: FakeClock,
    *,
    wait: float = 2.0,
    jitter: float = 1.0,
    max_wait: float = 0.0,
    seed: int = 1,
) -> ReconnectPlan:
    return ReconnectPlan(wait, jitter, max_wait=max_wait, clock=clock, rng=random.Random(seed))


def attempts(p: ReconnectPlan, clock: FakeClock, until: float) -> list[tuple[float, float]]:
    """Failed attempts (instant, delay) against POOL until ``until``, each taking 10 ms."""
    made = []
    while clock.now < until:
        _, delay = p(POOL, {})
        clock.now += delay
        made.append((clock.now, delay))
        clock.now += 0.01
    return made


def test_the_server_just_lost_is_tried_last_and_each_other_once_first() -> None:
    clock = FakeClock()
    p = plan(clock, jitter=0.0)
    p.lost("127.0.0.1:4223")
    clock.now += 0.1  # each attempt fails a little later
    first, delay1 = p(POOL, {})
    clock.now += 0.1
    second, delay2 = p(POOL, {})
    clock.now += 0.1
    third, delay3 = p(POOL, {})
    assert first is not None and second is not None and third is not None
    assert {first.uri.netloc, second.uri.netloc} == {"127.0.0.1:4222", "127.0.0.1:4224"}
    assert third.uri.netloc == "127.0.0.1:4223"
    assert (delay1, delay2) == (0.0, 0.0)  # never tried: at once
    assert abs(delay3 - 1.7) < 1e-9  # lost 0.3 s ago: not before reconnect_wait


def test_a_server_is_not_tried_again_before_wait_has_passed() -> None:
    clock = FakeClock()
    p = plan(clock, wait=2.0, jitter=0.0)
    one = [POOL[0]]
    assert p(one, {})[1] == 0.0
    clock.now += 0.5  # the attempt failed half a second later
    assert p(one, {})[1] == 1.5
    clock.now += 10.0
    assert p(one, {})[1] == 0.0


def test_jitter_spreads_nodes_that_lost_the_broker_together() -> None:
    clock = FakeClock()
    delays = []
    for seed in range(200):
        p = plan(clock, wait=2.0, jitter=1.0, seed=seed)
        p.lost("127.0.0.1:4222")
        delays.append(p([POOL[0]], {})[1])
    assert all(2.0 <= d <= 3.0 for d in delays)
    assert max(delays) - min(delays) > 0.8  # spread over the jitter, not in lockstep


def test_a_short_outage_keeps_the_plain_wait() -> None:
    clock = FakeClock()
    p = plan(clock, wait=1.0, jitter=1.0, max_wait=20.0)
    p.lost("127.0.0.1:4222")
    made = attempts(p, clock, clock.now + 29.0)
    assert all(delay <= 2.0 for _, delay in made)  # wait 1 s + jitter 1 s, as without growth
    assert len(made) > 20


def test_a_long_outage_grows_the_wait_to_max_wait_and_a_connect_starts_over() -> None:
    clock = FakeClock()
    start = clock.now
    p = plan(clock, wait=1.0, jitter=1.0, max_wait=20.0)
    p.lost("127.0.0.1:4222")
    made = attempts(p, clock, start + 600.0)
    late = [delay for at, delay in made if at - start > 60.0]
    assert all(10.0 <= d <= 20.0 for d in late)  # [max_wait/2, max_wait]
    for at, delay in made:  # never more than half the time cut off
        assert delay <= max(2.0, (at - delay - start) / 2 + 1e-9)
    # 10 minutes cost ~50 attempts, not ~600
    assert 40 < len(made) < 120
    p.connected()
    p.lost("127.0.0.1:4223")
    assert p(POOL, {})[1] <= 2.0


def test_a_fleet_cut_off_for_long_returns_spread_over_max_wait() -> None:
    """1,000 nodes lose the broker together; it is back after 10 minutes: when does each
    node's next attempt come? Spread over max_wait, not all in the first seconds."""
    returns = []
    for seed in range(1000):
        clock = FakeClock()
        back = clock.now + 600.0
        p = plan(clock, wait=1.0, jitter=1.0, max_wait=20.0, seed=seed)
        p.lost("127.0.0.1:4222")
        while clock.now < back:
            clock.now += p(POOL, {})[1]
        returns.append(clock.now - back)
    assert max(returns) <= 20.0
    first_two = sum(1 for r in returns if r < 2.0) / len(returns)
    assert first_two < 0.2  # a uniform spread over 20 s gives 0.1; no growth gives 1.0
    assert sum(1 for r in returns if r > 10.0) > 150


def test_max_wait_zero_never_grows() -> None:
    clock = FakeClock()
    p = plan(clock, wait=1.0, jitter=1.0, max_wait=0.0)
    p.lost("127.0.0.1:4222")
    assert all(delay <= 2.0 for _, delay in attempts(p, clock, clock.now + 300.0))


def test_an_empty_pool_gives_nothing() -> None:
    assert plan(FakeClock())([], {}) == (None, 0.0)


def test_the_connection_hands_nats_py_a_random_order_and_the_plan() -> None:
    settings = NatsSettings(servers=("nats://a:4222", "nats://b:4222"), reconnect_wait=3.0)
    conn = NatsConnection(settings)
    options = conn._options()
    assert options["dont_randomize"] is False
    assert options["reconnect_to_server_handler"] is conn.reconnect_plan
    assert options["reconnect_time_wait"] == 3.0
    assert conn.reconnect_plan.wait == 3.0 and conn.reconnect_plan.jitter == 1.0
    assert conn.reconnect_plan.max_wait == 20.0
    assert options["discovered_server_cb"] is not None


async def test_the_connection_resets_the_plan_when_it_is_back() -> None:
    clock = FakeClock()
    settings = NatsSettings(servers=("nats://a:4222",), reconnect_max_wait=20.0)
    conn = NatsConnection(settings, clock=clock)  # not started: only its callbacks are called
    await conn._on_disconnected()
    clock.now += 100.0
    assert conn.reconnect_plan.grown_wait(clock.now) == 20.0
    await conn._on_reconnected()
    assert conn.reconnect_plan.grown_wait(clock.now) == 0.0
