"""A full outbox keeps what matters: a node offline with a tiny outbox, whose machines keep
transitioning while a watcher announces its state several times a second, drops the
announcements (oldest first) and keeps every transition; the drops are counted per kind in
``steward status`` and the metrics, and once NATS is there the stream holds every transition
seq 1..N, once each, in order."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import MachinesDir
from tests.support.events import (
    DEADLINE,
    STREAM,
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
BOUND = 120  # events the outbox holds
DROPPED_ANNOUNCEMENTS = 40  # dropped before the test stops the transitions

# a watcher on every state whose outcome flips at each run: announced at every run
ANNOUNCER = """\
name: announcer
version: 1.0.0
initial_state: on
transitions:
  - {name: noop, from: [on], destination: on}
watchers:
  - name: flip
    type: exec
    interval: 100ms
    properties:
      command: ./flip.sh
"""
FLIP = """\
n=$(cat n 2>/dev/null || echo 0)
echo $((n + 1)) > n
exit $((n % 2))
"""


@pytest.fixture
def nats_down(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path, start=False)


@pytest.fixture
def daemon(tmp_path: Path, nats_down: NatsServer) -> Iterator[StewardDaemon]:
    machines = MachinesDir(tmp_path / "machines")
    machines.add("blink", toggle("blink", "200ms"))
    machines.add("announcer", ANNOUNCER, {"flip.sh": FLIP})
    state_dir = short_tmp_dir("op-")
    d = make_daemon(
        tmp_path,
        machines.path,
        state_dir,
        config=f"events:\n  outbox:\n    max_events: {BOUND}\n",
        args=("--nats-server", nats_down.url, "--nats-stream", STREAM),
    )
    yield d
    d.cleanup()
    shutil.rmtree(state_dir, ignore_errors=True)


def test_an_offline_node_with_a_full_outbox_keeps_every_transition(
    daemon: StewardDaemon, nats_down: NatsServer
) -> None:
    d = daemon
    d.start()
    status = d.wait_for(
        lambda s: (
            s["events"]["outbox"]["dropped_by_kind"].get("watcher", 0) >= DROPPED_ANNOUNCEMENTS
        ),
        DEADLINE,
        "the outbox to overflow with announcements",
    )
    outbox = status["events"]["outbox"]
    assert outbox["events"] <= BOUND
    assert set(outbox["dropped_by_kind"]) == {"watcher"}, outbox
    last = int(d.transition("blink", "halt")["seq"])
    assert last < BOUND // 2, f"{last} transitions: more than the test's outbox can keep"
    # the announcer goes on while offline: still only announcements go
    d.wait_for(
        lambda s: (
            s["events"]["outbox"]["dropped_by_kind"]["watcher"]
            >= outbox["dropped_by_kind"]["watcher"] + 10
        ),
        DEADLINE,
        "more announcements dropped",
    )
    status = d.status()
    assert set(status["events"]["outbox"]["dropped_by_kind"]) == {"watcher"}
    assert status["events"]["outbox"]["dropped"] == sum(
        status["events"]["outbox"]["dropped_by_kind"].values()
    )
    metrics = d.scrape()
    assert 'steward_events_dropped_total{kind="transition"} 0.0' in metrics
    assert 'steward_events_dropped_total{kind="watcher"} 0.0' not in metrics
    assert "dropped" in d.ctl("status").stdout
    warnings = d.log_records("warning", "outbox full")
    assert warnings and set(warnings[0]["dropped"]) == {"watcher"}, warnings

    nats_down.start()
    d.wait_for(d.delivered_all, DEADLINE, "the outbox delivered")
    assert d.stop() == 0
    messages = read_stream(nats_down.url)
    seqs = seqs_of(messages, "blink", NODE)
    assert seqs == list(range(1, last + 1)), describe_gaps(seqs)
    steps = [
        m.subject for m in messages if m.subject.endswith(".lifecycle")
    ]  # loaded and started of both machines, from before NATS was ever seen
    assert len(steps) >= 4, steps
    announcements = [m for m in messages if ".watcher." in m.subject]
    assert announcements, "the newest announcements are delivered"
    print(
        f"\n{last} transitions kept; {len(announcements)} announcements delivered, "
        f"{status['events']['outbox']['dropped_by_kind']['watcher']}+ dropped"
    )
