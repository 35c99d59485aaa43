"""Graceful stop: SIGTERM ends the daemon quickly with 0 and kills what its watchers run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import (
    Daemon,
    MachinesDir,
    kill_quietly,
    pid_alive,
    read_pid,
    wait_until,
)

pytestmark = pytest.mark.e2e

SLEEPER = """
    name: sleeper
    version: 1.0.0
    initial_state: busy
    transitions:
      - {name: relax, from: [busy], destination: idle}
    watchers:
      - name: long
        type: exec
        state_match: [busy]
        properties:
          command: ./long.sh
          timeout: 1h
"""

# a script and a grandchild of the daemon, both recording their pids, both long-lived
LONG = """
    sleep 1000 &
    echo $! > .child.partial && mv .child.partial child.pid
    echo $$ > .script.partial && mv .script.partial script.pid
    wait
"""


@pytest.fixture
def sleeper(machines: MachinesDir) -> Iterator[Path]:
    directory = machines.add("sleeper", SLEEPER, {"long.sh": LONG})
    yield directory
    for name in ("child.pid", "script.pid"):  # whatever the test did, leave nothing behind
        kill_quietly(read_pid(directory / name))


def _started(daemon: Daemon, directory: Path) -> tuple[int, int]:
    def both() -> tuple[int, int] | None:
        script, child = read_pid(directory / "script.pid"), read_pid(directory / "child.pid")
        if script and child and pid_alive(script) and pid_alive(child):
            return script, child
        return None

    return wait_until(both, 10, "the watcher's processes to start", daemon.describe)


def _gone(daemon: Daemon, pids: tuple[int, ...]) -> None:
    wait_until(
        lambda: not any(pid_alive(p) for p in pids),
        5,
        f"processes {pids} to be killed",
        daemon.describe,
    )


def test_sigterm_stops_cleanly_and_kills_children(daemon: Daemon, sleeper: Path) -> None:
    daemon.start()
    pids = _started(daemon, sleeper)

    t0 = time.monotonic()
    code = daemon.stop(timeout=5)
    elapsed = time.monotonic() - t0
    assert code == 0, daemon.log_tail()
    assert elapsed < 5
    _gone(daemon, pids)
    assert not daemon.socket_path.exists()
    assert any(r["msg"] == "steward stopped" for r in daemon.logs())
    assert not [r for r in daemon.logs() if r["level"] == "error"]


def test_leaving_the_state_kills_the_running_check(daemon: Daemon, sleeper: Path) -> None:
    daemon.start()
    pids = _started(daemon, sleeper)
    daemon.transition("sleeper", "relax")
    _gone(daemon, pids)
    assert daemon.running
