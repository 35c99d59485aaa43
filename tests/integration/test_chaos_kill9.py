"""kill -9 chaos: the daemon is SIGKILLed at random moments while its machines transition
continuously and JetStream flaps on and off; it is restarted on the same state dir each time.

Afterwards the database passes ``PRAGMA integrity_check``, every machine's delivered ``seq``
values (the whole stream, read back) are exactly 1..last — contiguous, no duplicates, in
order — and the last delivered transition of each machine matches what ``steward status``
shows. 30 kills in ``make test``, 100 with ``STEWARD_LONG_TESTS=1``.

Duplicates are prevented by JetStream's ``Nats-Msg-Id`` deduplication (the window is
2 minutes and survives a server restart on the same store); this run stays inside it.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import MachinesDir
from tests.support.events import (
    DEADLINE,
    PREFIX,
    STREAM,
    StewardDaemon,
    check_event,
    data_of,
    describe_gaps,
    make_daemon,
    read_stream,
    short_tmp_dir,
    toggle,
    transitions,
)
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

LONG = os.environ.get("STEWARD_LONG_TESTS") == "1"
KILLS = 100 if LONG else 30
NODE = "e2e"
MACHINES = ("alpha", "beta", "gamma")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = short_tmp_dir("sk-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(tmp_path: Path, nats_server: NatsServer, state_dir: Path) -> Iterator[StewardDaemon]:
    machines = MachinesDir(tmp_path / "machines")
    for name in MACHINES:
        machines.add(name, toggle(name, "20ms"))
    d = make_daemon(
        tmp_path,
        machines.path,
        state_dir,
        args=("--nats-server", nats_server.url, "--nats-stream", STREAM),
    )
    yield d
    d.cleanup()


def integrity(state_dir: Path) -> str:
    db = sqlite3.connect(state_dir / "steward.db")
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def test_kill9_chaos_with_flapping_jetstream(
    daemon: StewardDaemon, nats_server: NatsServer, state_dir: Path
) -> None:
    rng = random.Random(os.environ.get("STEWARD_CHAOS_SEED") or time.time_ns())
    began = time.monotonic()
    daemon.start()
    during_startup = 0
    for _ in range(KILLS):
        if rng.random() < 0.4:  # JetStream flaps: down or back up, on the same port and store
            if nats_server.running:
                nats_server.stop()
            else:
                nats_server.start()
        if rng.random() < 0.2:
            # a kill while the daemon is still starting (opening the store, resuming machines)
            daemon.kill9()
            daemon.proc = daemon.spawn()
            time.sleep(rng.uniform(0.0, 0.6))
            during_startup += 1
        else:
            time.sleep(rng.uniform(0.05, 0.7))
        daemon.kill9()
        daemon.start()
    if not nats_server.running:
        nats_server.start()
    chaos_seconds = time.monotonic() - began

    # the end: stop every machine where it is, let the outbox drain, stop cleanly
    last = {name: int(daemon.transition(name, "halt")["seq"]) for name in MACHINES}
    daemon.wait_for(daemon.delivered_all, DEADLINE, "every event delivered after the chaos")
    status = daemon.status()
    assert daemon.stop() == 0
    assert integrity(state_dir) == "ok"

    messages = read_stream(nats_server.url, subject=f"{PREFIX}.{NODE}.*.transition")
    events = [check_event(m, NODE) for m in messages]
    ids = [e.get_id() for e in events]
    assert len(ids) == len(set(ids)), "an event was stored twice in the stream"
    for name in MACHINES:
        moves = transitions(events, name)
        seqs = [t["seq"] for t in moves]
        assert seqs == list(range(1, last[name] + 1)), f"{name}: {describe_gaps(seqs)}"
        machine = daemon.machine(name, status)
        assert machine is not None
        assert moves[-1]["to_state"] == machine["state"] == "halted"
        assert moves[-1]["seq"] == machine["seq"]
        for before, after in itertools.pairwise(moves):
            assert before["to_state"] == after["from_state"], (name, before, after)
    resumed = [
        data_of(e)
        for e in (check_event(m, NODE) for m in read_stream(nats_server.url))
        if e.get_type().endswith(".lifecycle") and data_of(e)["step"] == "resumed"
    ]
    assert len(resumed) >= len(MACHINES) * (KILLS - during_startup) // 2
    print(
        f"\nchaos: {KILLS} kills ({during_startup} during startup), {nats_server.starts} NATS "
        f"starts, {chaos_seconds:.1f}s, seqs {last}"
    )
