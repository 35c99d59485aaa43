"""Broker abuse: a broker that accepts connections and never answers, a broker frozen mid
session (SIGSTOP, then SIGCONT), slow consumers next to the daemon, and a restart with a wiped
JetStream store. Through all of it the daemon keeps running its machines, the outbox stays
within its bounds, and delivery resumes — in order, without duplicates.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import MachinesDir
from tests.support.events import (
    DEADLINE,
    PREFIX,
    STREAM,
    StewardDaemon,
    describe_gaps,
    make_daemon,
    read_stream,
    seqs_of,
    short_tmp_dir,
    toggle,
)
from tests.support.nats_server import NatsServer, free_port, running_nats

pytestmark = pytest.mark.e2e

LONG = os.environ.get("STEWARD_LONG_TESTS") == "1"
STALL = 20.0 if LONG else 7.0  # seconds the broker stays frozen
NODE = "e2e"
BOUND = 150  # outbox max_events in these tests


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = short_tmp_dir("sb-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def machines(tmp_path: Path) -> MachinesDir:
    m = MachinesDir(tmp_path / "machines")
    m.add("blink", toggle("blink", "20ms"))
    return m


def daemon_for(tmp_path: Path, machines: MachinesDir, state_dir: Path, url: str) -> StewardDaemon:
    return make_daemon(
        tmp_path,
        machines.path,
        state_dir,
        config=f"events:\n  outbox:\n    max_events: {BOUND}\n",
        args=("--nats-server", url, "--nats-stream", STREAM),
    )


@pytest.fixture
def daemons(tmp_path: Path, machines: MachinesDir, state_dir: Path) -> Iterator[list[Any]]:
    made: list[StewardDaemon] = []
    yield made
    for d in made:
        d.cleanup()


def keeps_running(d: StewardDaemon, seconds: float) -> dict[str, Any]:
    """Poll the daemon for ``seconds``: it answers, the machine moves, the outbox stays bounded."""
    first = d.machine_seq("blink")
    until = time.monotonic() + seconds
    status = d.status()
    while time.monotonic() < until:
        status = d.status()
        assert status["events"]["outbox"]["events"] <= BOUND, status["events"]
    assert d.machine_seq("blink") >= first + seconds * 10, "the machine stopped moving"
    return status


def delivered_in_order(url: str, last: int, dropped: int) -> list[int]:
    """The stream's seqs for blink: increasing, no duplicates, ending at ``last``; missing
    ones only as many as the outbox reported dropped."""
    seqs = seqs_of(read_stream(url, subject=f"{PREFIX}.{NODE}.blink.transition"), "blink", NODE)
    assert seqs and seqs[-1] == last, describe_gaps(seqs)
    assert all(b > a for a, b in itertools.pairwise(seqs)), describe_gaps(seqs)
    assert (seqs[-1] - seqs[0] + 1) - len(seqs) <= dropped, describe_gaps(seqs)
    return seqs


def test_broker_frozen_mid_session_then_resumed(
    tmp_path: Path,
    nats_server: NatsServer,
    machines: MachinesDir,
    state_dir: Path,
    daemons: list[StewardDaemon],
) -> None:
    d = daemon_for(tmp_path, machines, state_dir, nats_server.url)
    daemons.append(d)
    d.start()
    d.wait_for(lambda s: s["events"]["nats"]["published"] >= 20, DEADLINE, "events published")
    assert nats_server.proc is not None
    os.kill(nats_server.proc.pid, signal.SIGSTOP)  # TCP stays up, nothing answers
    try:
        during = keeps_running(d, STALL)
    finally:
        os.kill(nats_server.proc.pid, signal.SIGCONT)
    assert during["events"]["outbox"]["events"] >= BOUND // 2, "the outbox did not fill"
    d.wait_for(
        lambda s: s["events"]["nats"]["published"] > during["events"]["nats"]["published"] + 20,
        DEADLINE,
        "delivery to resume after SIGCONT",
    )
    last = int(d.transition("blink", "halt")["seq"])
    status = d.wait_for(d.delivered_all, DEADLINE, "every event delivered")
    seqs = delivered_in_order(nats_server.url, last, status["events"]["outbox"]["dropped"])
    print(f"\nfrozen {STALL:g}s: {len(seqs)} delivered, {status['events']['outbox']}")


def test_broker_that_accepts_and_never_answers(
    tmp_path: Path, machines: MachinesDir, state_dir: Path, daemons: list[StewardDaemon]
) -> None:
    port = free_port()
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the kernel accepts; no INFO
    mute.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    mute.bind(("127.0.0.1", port))
    mute.listen(64)
    server = NatsServer(tmp_path / "js-mute", tmp_path / "nats-mute.log", port=port)
    try:
        d = daemon_for(tmp_path, machines, state_dir, server.url)
        daemons.append(d)
        d.start()
        during = keeps_running(d, 5.0)
        assert during["events"]["nats"]["connected"] is False
        mute.close()
        server.start()  # the real broker on the same port
        d.wait_for(
            lambda s: s["events"]["nats"]["connected"] and s["events"]["nats"]["published"] > 0,
            DEADLINE,
            "the daemon to connect to the real broker",
        )
        last = int(d.transition("blink", "halt")["seq"])
        status = d.wait_for(d.delivered_all, DEADLINE, "every event delivered")
        delivered_in_order(server.url, last, status["events"]["outbox"]["dropped"])
    finally:
        mute.close()
        server.close()


def test_restart_with_a_wiped_jetstream_store(
    tmp_path: Path,
    nats_server: NatsServer,
    machines: MachinesDir,
    state_dir: Path,
    daemons: list[StewardDaemon],
) -> None:
    d = daemon_for(tmp_path, machines, state_dir, nats_server.url)
    daemons.append(d)
    d.start()
    d.wait_for(lambda s: s["events"]["nats"]["published"] >= 20, DEADLINE, "events published")
    nats_server.stop()
    shutil.rmtree(nats_server.store_dir)  # the broker lost everything, stream included
    keeps_running(d, 2.0)
    nats_server.start()
    d.wait_for(
        lambda s: s["events"]["nats"]["connected"] and s["events"]["outbox"]["events"] < 20,
        DEADLINE,
        "the stream recreated and the backlog delivered",
    )
    last = int(d.transition("blink", "halt")["seq"])
    status = d.wait_for(d.delivered_all, DEADLINE, "every event delivered")
    seqs = delivered_in_order(nats_server.url, last, status["events"]["outbox"]["dropped"])
    assert seqs[0] > 1  # what the old stream held is gone with it; the rest is contiguous
    assert seqs == list(range(seqs[0], last + 1)), describe_gaps(seqs)


def test_slow_consumers_do_not_slow_the_daemon(
    tmp_path: Path,
    nats_server: NatsServer,
    machines: MachinesDir,
    state_dir: Path,
    daemons: list[StewardDaemon],
) -> None:
    # a subscriber that never reads its socket, with a tiny receive buffer
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", nats_server.port))
    slow.sendall(b'CONNECT {"verbose":false}\r\nSUB steward.events.> 1\r\nPING\r\n')
    try:
        d = daemon_for(tmp_path, machines, state_dir, nats_server.url)
        daemons.append(d)
        d.start()
        d.wait_for(lambda s: s["events"]["nats"]["published"] >= 20, DEADLINE, "published")
        status = keeps_running(d, 5.0)
        assert status["events"]["nats"]["connected"]
        assert status["events"]["outbox"]["events"] < BOUND // 2, "delivery fell behind"
        last = int(d.transition("blink", "halt")["seq"])
        status = d.wait_for(d.delivered_all, DEADLINE, "every event delivered")
        assert status["events"]["outbox"]["dropped"] == 0
        seqs = delivered_in_order(nats_server.url, last, 0)
        assert seqs == list(range(1, last + 1)), describe_gaps(seqs)
    finally:
        slow.close()
