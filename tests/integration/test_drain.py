"""A node coming back after an outage drains its backlog at ``events.drain_rate`` after a
random delay, while the live events of machines with nothing in the backlog go ahead at once;
every machine's events arrive once each and in order (real daemon, real nats-server)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import MachinesDir
from tests.support.events import (
    DEADLINE,
    PREFIX,
    STREAM,
    NatsCollector,
    StewardDaemon,
    describe_gaps,
    make_daemon,
    read_stream,
    seqs_of,
    short_tmp_dir,
    toggle,
)
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

NODE = "e2e"
RATE = 100  # events/s
BACKLOG = 700  # events the outage leaves behind at least
QUIET = """\
name: quiet
version: 1.0.0
initial_state: idle
transitions:
  - {name: go, from: [idle], destination: busy}
"""


@pytest.fixture
def nats_down(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path, start=False)


@pytest.fixture
def daemon(tmp_path: Path, nats_down: NatsServer) -> Iterator[StewardDaemon]:
    machines = MachinesDir(tmp_path / "machines")
    machines.add("blink", toggle("blink", "10ms"))
    machines.add("quiet", QUIET)
    state_dir = short_tmp_dir("dr-")
    d = make_daemon(
        tmp_path,
        machines.path,
        state_dir,
        config=f"events:\n  drain_rate: {RATE}\n  drain_jitter: 1s\n",
        args=("--nats-server", nats_down.url, "--nats-stream", STREAM),
    )
    yield d
    d.cleanup()
    shutil.rmtree(state_dir, ignore_errors=True)


def test_the_backlog_drains_at_the_rate_and_live_events_go_ahead(
    daemon: StewardDaemon, nats_down: NatsServer
) -> None:
    d = daemon
    d.start()
    d.wait_for(
        lambda s: s["events"]["outbox"]["events"] >= BACKLOG, DEADLINE, "a backlog to build up"
    )
    last = int(d.transition("blink", "halt")["seq"])
    backlog = d.status()["events"]["outbox"]["events"]

    nats_down.start()
    started = time.monotonic()
    collector = NatsCollector(nats_down.url, f"{PREFIX}.{NODE}.quiet.>").start()
    try:
        # quiet's backlog (loaded, started) is among the oldest rows: gone in the first slice
        d.wait_for(
            lambda s: (
                bool(s["events"]["nats"]["connected"])
                and s["events"]["nats"]["backlog"]
                and s["events"]["outbox"]["events"] < backlog - 10
            ),
            DEADLINE,
            "the drain to start",
        )
        fired = time.time()
        assert d.transition("quiet", "go")["seq"] == 1
        got = collector.wait_for(
            lambda got: any(m.subject.endswith(".transition") for m in got),
            "quiet's live transition",
        )
        delay = next(m for m in got if m.subject.endswith(".transition")).at - fired
        left = d.status()["events"]["outbox"]["events"]
    finally:
        collector.close()
    assert delay < 2.0, f"the live event took {delay:.2f}s"
    assert left > RATE, f"the backlog was already drained ({left} left): nothing was shown"

    d.wait_for(d.delivered_all, DEADLINE, "the backlog delivered")
    took = time.monotonic() - started
    # one second of burst, then the rate (and up to 1 s of jitter before it)
    assert took >= 0.8 * (backlog - RATE) / RATE, f"{backlog} events in {took:.1f}s"
    assert d.stop() == 0
    messages = read_stream(nats_down.url)
    seqs = seqs_of(messages, "blink", NODE)
    assert seqs == list(range(1, last + 1)), describe_gaps(seqs)
    assert seqs_of(messages, "quiet", NODE) == [1]
    print(
        f"\n{backlog} events drained in {took:.1f}s at {RATE}/s; "
        f"a live event took {delay * 1000:.0f} ms with {left} still in the backlog"
    )
