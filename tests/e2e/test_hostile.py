"""Hostile commands against the real daemon: gigabytes of output, ignored SIGTERM, children
that escape with ``setsid``, commands that never exit. Output stays capped, the daemon's
memory stays bounded, and every descendant is killed and reaped: nothing is left in /proc.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.processes import process_table
from tests.support.daemon import (
    Daemon,
    MachinesDir,
    kill_quietly,
    read_pid,
    wait_until,
    watcher,
)

pytestmark = pytest.mark.e2e

GIB = 1 << 30
RSS_GROWTH_LIMIT = 50 << 20  # bytes the daemon may grow by while commands print gigabytes

LOUD = """
    name: loud
    version: 1.0.0
    initial_state: idle
    transitions:
      - {name: go, from: [idle], destination: printing}
      - {name: printed, from: [printing], destination: done}
      - {name: probed, from: [done], destination: probed}
    watchers:
      - name: flood
        type: exec
        state_match: [printing]
        success_transition: printed
        properties:
          command: ./flood.sh %(exec_bytes)d
          timeout: 2m
      - name: health_flood
        type: health
        state_match: [done]
        success_transition: probed
        properties:
          command: ./flood.sh %(health_bytes)d
          timeout: 2m
"""

FLOOD = """
    head -c "$1" /dev/zero | tr '\\0' x
"""

ESCAPE = """
    name: escape
    version: 1.0.0
    initial_state: running
    transitions:
      - {name: gave_up, from: [running], destination: stuck}
    watchers:
      - name: hostile
        type: exec
        state_match: [running]
        fail_transition: gave_up
        properties:
          command: ./hostile.sh
          timeout: 1500ms
"""

# ignores SIGTERM, never exits, and leaves descendants outside its process group and session
HOSTILE = """
    trap '' TERM
    setsid sleep 1000 &
    echo $! > escaped.pid
    setsid sh -c 'trap "" TERM; sleep 1000 & echo $! > grandchild.pid; wait' &
    echo $! > escaped_shell.pid
    sh -c 'trap "" TERM; while :; do sleep 1; done' &
    echo $! > looper.pid
    echo $$ > script.pid
    while :; do sleep 1; done
"""

ORPHANS = """
    name: orphans
    version: 1.0.0
    initial_state: idle
    transitions:
      - {name: spawned, from: [idle], destination: spawned}
    watchers:
      - name: leave_behind
        type: exec
        state_match: [idle]
        success_transition: spawned
        properties:
          command: ./leave.sh
"""

# exits at once, leaving one long-lived orphan and a stream of short-lived ones
LEAVE = """
    setsid sleep 1000 &
    echo $! > orphan.pid
    for i in 1 2 3 4 5 6 7 8 9 10; do setsid sh -c 'exit 0' & done
    exit 0
"""

PID_FILES = (
    "escaped.pid",
    "grandchild.pid",
    "escaped_shell.pid",
    "looper.pid",
    "script.pid",
    "orphan.pid",
)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def in_proc(pid: int) -> bool:
    """True while the pid exists at all, zombie or not."""
    return Path(f"/proc/{pid}").exists()


def zombie_children(pid: int) -> list[int]:
    return [s.pid for s in process_table().values() if s.ppid == pid and s.state == "Z"]


@pytest.fixture
def leftovers(machines: MachinesDir) -> Iterator[list[Path]]:
    """Machine dirs whose recorded pids are killed at teardown, whatever the test did."""
    dirs: list[Path] = []
    yield dirs
    for directory in dirs:
        for name in PID_FILES:
            kill_quietly(read_pid(directory / name))


def test_gigabytes_of_output_stay_capped_and_memory_bounded(
    daemon: Daemon, machines: MachinesDir
) -> None:
    scripts = {"flood.sh": FLOOD}
    sizes = {"exec_bytes": 2 * GIB, "health_bytes": GIB // 4}
    machines.add("loud", LOUD % sizes, scripts)
    daemon.start()
    daemon.wait_state("loud", "idle")
    before = rss(daemon.pid)

    daemon.transition("loud", "go")
    m = daemon.wait_state("loud", "probed", timeout=90)
    after = rss(daemon.pid)

    flood = watcher(m, "flood")
    assert flood["last_outcome"] == "success"
    assert flood["state"]["stdout"] == "x" * 1024  # the payload carries 1 KiB of the 64 KiB kept
    assert watcher(m, "health_flood")["last_outcome"] == "success"
    assert after - before < RSS_GROWTH_LIMIT, f"RSS grew {(after - before) >> 20} MB"
    assert daemon.stop() == 0


def test_escaped_children_of_a_timed_out_command_are_killed_and_reaped(
    daemon: Daemon, machines: MachinesDir, leftovers: list[Path]
) -> None:
    directory = machines.add("escape", ESCAPE, {"hostile.sh": HOSTILE})
    leftovers.append(directory)
    daemon.start()

    m = daemon.wait_state("escape", "stuck", timeout=15)
    hostile = watcher(m, "hostile")
    assert hostile["state"]["timed_out"] is True
    pids = [read_pid(directory / name) for name in PID_FILES[:5]]
    assert all(pids), f"the script did not record every pid: {pids}"
    wait_until(
        lambda: not any(in_proc(p) for p in pids if p),
        10,
        f"every process of the timed out command {pids} to be killed and reaped",
        daemon.describe,
    )
    assert zombie_children(daemon.pid) == []
    assert daemon.stop() == 0


def test_orphans_are_reaped_while_running_and_killed_at_stop(
    daemon: Daemon, machines: MachinesDir, leftovers: list[Path]
) -> None:
    directory = machines.add("orphans", ORPHANS, {"leave.sh": LEAVE})
    leftovers.append(directory)
    daemon.start()
    daemon.wait_state("orphans", "spawned")
    orphan = wait_until(lambda: read_pid(directory / "orphan.pid"), 5, "the orphan's pid")

    # the daemon is a child subreaper: the escaped orphan is now its child...
    table = process_table()
    assert table[orphan].ppid == daemon.pid
    # ...and the short-lived orphans that exited do not stay zombies
    wait_until(
        lambda: not zombie_children(daemon.pid),
        5,
        "the exited orphans to be reaped",
        daemon.describe,
    )
    daemon_pid = daemon.pid
    assert daemon.stop() == 0
    assert not in_proc(orphan), "the orphan outlived the daemon"
    assert not any(s.ppid == daemon_pid for s in process_table().values())
