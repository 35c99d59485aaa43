"""The timer watcher: one clock timer per activation (no task), counted as any run is."""

from __future__ import annotations

import random
from pathlib import Path

from steward.watchers.base import Outcome
from steward.watchers.timer import TimerProperties, TimerWatcher
from tests.support.fakes import FakeClock, fake_context, settle
from tests.support.machines import Handle, w


def timer(
    tmp_path: Path,
    clock: FakeClock,
    *,
    seconds: float = 30,
    splay: bool = False,
    interval: float | None = None,
    rng: random.Random | None = None,
) -> TimerWatcher:
    spec = w(
        "t",
        wtype="timer",
        fail="down",
        interval=interval,
        props=TimerProperties(seconds, splay=splay),
    )
    context = fake_context(tmp_path / "scratch", clock=clock, rng=rng)
    return TimerWatcher(spec, Handle(tmp_path, state="waiting"), context)


def results(watcher: TimerWatcher) -> list[object]:
    handle = watcher.machine
    assert isinstance(handle, Handle)
    return list(handle.results)


async def test_an_active_timer_is_one_clock_timer_and_no_task(tmp_path: Path) -> None:
    clock = FakeClock()
    watcher = timer(tmp_path, clock)
    watcher.activate()
    await settle()
    assert watcher._task is None
    assert clock.sleepers == 1
    await clock.advance(29.9)
    assert results(watcher) == []
    await clock.advance(0.1)
    (result,) = watcher.machine.results  # type: ignore[attr-defined]
    assert result.outcome is Outcome.FAILURE
    assert result.detail == "timer expired after 30s"
    assert dict(result.payload) == {"timer": 30, "state": "waiting"}
    status = watcher.status()
    assert (status["runs"], status["last_outcome"], status["last_duration"]) == (1, "failure", 30)
    assert status["last_run_at"] == clock.time()
    assert clock.sleepers == 0  # it ran once: nothing waits any more


async def test_the_result_carries_the_state_version_it_started_in(tmp_path: Path) -> None:
    clock = FakeClock()
    watcher = timer(tmp_path, clock)
    handle = watcher.machine
    assert isinstance(handle, Handle)
    versions: list[int] = []
    handle.submit_result = lambda _w, _r, version: versions.append(version)  # type: ignore[method-assign]
    handle.state_version = 4
    watcher.activate()
    handle.state_version = 5  # the machine moved while the timer ran
    await clock.advance(30)
    assert versions == [4]


async def test_deactivated_or_closed_it_reports_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    watcher = timer(tmp_path, clock)
    watcher.activate()
    await clock.advance(10)
    watcher.deactivate()
    assert clock.sleepers == 0
    watcher.activate()
    await watcher.close()
    await clock.advance(120)
    assert results(watcher) == []
    assert not watcher.active


async def test_activating_it_again_restarts_it(tmp_path: Path) -> None:
    clock = FakeClock()
    watcher = timer(tmp_path, clock)
    watcher.activate()
    await clock.advance(20)
    watcher.activate()  # entering another matching state
    await clock.advance(20)
    assert results(watcher) == []
    assert clock.sleepers == 1
    await clock.advance(10)
    assert len(results(watcher)) == 1


async def test_splay_draws_the_duration_from_the_random_source(tmp_path: Path) -> None:
    clock = FakeClock()
    expected = random.Random(7).uniform(0, 30)
    watcher = timer(tmp_path, clock, splay=True, rng=random.Random(7))
    watcher.activate()
    await clock.advance(expected - 0.001)
    assert results(watcher) == []
    await clock.advance(0.001)
    (result,) = watcher.machine.results  # type: ignore[attr-defined]
    assert result.payload["timer"] == expected


async def test_wake_after_it_ran_runs_it_once_more(tmp_path: Path) -> None:
    clock = FakeClock()
    watcher = timer(tmp_path, clock)
    watcher.activate()
    watcher.wake()  # while it runs: nothing more
    await clock.advance(30)
    assert len(results(watcher)) == 1 and clock.sleepers == 0
    watcher.wake()
    await clock.advance(30)
    assert len(results(watcher)) == 2


async def test_with_an_interval_it_runs_again_on_the_base_loop(tmp_path: Path) -> None:
    clock = FakeClock()
    watcher = timer(tmp_path, clock, seconds=10, interval=60)
    watcher.activate()
    await settle()
    assert watcher._task is not None  # the base's run loop: a check, then the interval
    await clock.advance(10)
    assert len(results(watcher)) == 1
    await clock.advance(60)
    assert len(results(watcher)) == 2
    await watcher.close()
