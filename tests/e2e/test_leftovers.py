"""Processes a machine leaves behind: removing or reloading a machine ends every process its
commands left running — backgrounded trees, double-forked ``setsid`` children adopted by the
daemon, children that cleared their environment — within a few seconds, and never touches
another machine's, nor the new instance's after a reload."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.processes import process_table
from tests.support.daemon import Daemon, MachinesDir, kill_quietly, pid_alive, wait_until

pytestmark = pytest.mark.e2e

END_WITHIN = 5.0  # seconds from a machine leaving the status until its leftovers are gone
PER_RUN = 4  # processes each run of LEAVE leaves behind

MACHINE = """
    name: {name}
    version: {version}
    initial_state: running
    transitions:
      - {{name: noop, from: [running], destination: running}}
    watchers:
      - name: leave
        type: exec
        interval: 200ms
        properties:
          command: ./leave.sh
          environment: [RECORD={record}]
"""

# exits at once, leaving: a backgrounded sh and its sleep; a sleep double-forked through a
# setsid'd sh (which exits, so the daemon adopts the sleep); a sleep that cleared its
# environment but stayed in the command's session. Each records its pid in a file of its own,
# under a directory named after the instance that ran it.
LEAVE = """
    dir="$RECORD/${STEWARD_MACHINE_INSTANCE:-untagged}"
    mkdir -p "$dir"
    sh -c 'sleep 1000 & echo $! > "$1/bg-sleep.$$"; wait' sh "$dir" >/dev/null 2>&1 &
    echo $! > "$dir/bg-sh.$$"
    setsid sh -c 'sleep 1000 & echo $! > "$1/setsid-sleep.$$"' sh "$dir" >/dev/null 2>&1 &
    env -i /bin/sleep 1000 >/dev/null 2>&1 &
    echo $! > "$dir/cleared.$$"
    exit 0
"""


def recorded(record: Path) -> list[int]:
    """Every pid recorded under ``record`` (any instance)."""
    pids = []
    for path in record.rglob("*.*"):
        text = path.read_text().strip()
        if text.isdigit():
            pids.append(int(text))
    return pids


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if pid_alive(p)]


@pytest.fixture
def records(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """One record dir per machine; whatever the test did, every recorded pid is killed."""
    dirs = {name: tmp_path / f"record-{name}" for name in ("gone", "kept", "reloaded")}
    for d in dirs.values():
        d.mkdir()
    yield dirs
    for d in dirs.values():
        for pid in recorded(d):
            kill_quietly(pid)


def add(machines: MachinesDir, name: str, record: Path, version: str = "1.0.0") -> None:
    definition = MACHINE.format(name=name, version=version, record=record)
    machines.add(name, definition, {"leave.sh": LEAVE})


def test_removing_a_machine_ends_every_process_it_left_and_no_other(
    daemon: Daemon, machines: MachinesDir, records: dict[str, Path]
) -> None:
    add(machines, "gone", records["gone"])
    add(machines, "kept", records["kept"])
    daemon.start()
    # let them pile up: a machine that has run for a while
    wait_until(
        lambda: (
            len(alive(recorded(records["gone"]))) >= 15 * PER_RUN
            and len(alive(recorded(records["kept"]))) >= 2 * PER_RUN
        ),
        30,
        "leftovers of both machines",
        daemon.describe,
    )
    adopted = [s for s in process_table().values() if s.ppid == daemon.pid]
    assert len(adopted) > PER_RUN, "the daemon should have adopted the commands' orphans"

    shutil.rmtree(machines.path / "gone")
    daemon.signal(signal.SIGHUP)
    removed_at = time.monotonic()
    daemon.wait_for(lambda s: [m["name"] for m in s["machines"]] == ["kept"], what="gone removed")
    gone = recorded(records["gone"])  # complete now: none of its commands runs any more
    kept = alive(recorded(records["kept"]))
    print(f"\nleftovers of the removed machine: {len(gone)}")
    wait_until(
        lambda: not alive(gone),
        END_WITHIN,
        f"the leftovers of the removed machine to end: {alive(gone)}",
        daemon.describe,
    )
    print(f"all ended {time.monotonic() - removed_at:.2f}s after the SIGHUP")
    assert alive(kept) == kept, "the other machine's processes were touched"
    # said once they are killed (the line may follow the kill by a moment)
    wait_until(
        lambda: any("machine gone left running" in r.get("msg", "") for r in daemon.logs()),
        5,
        "the log line that says what was killed",
        daemon.describe,
    )

    kept = recorded(records["kept"])
    assert daemon.stop() == 0
    assert alive(kept) == [], "the daemon's stop left processes running"


def test_reloading_a_machine_ends_what_the_old_instance_left(
    daemon: Daemon, machines: MachinesDir, records: dict[str, Path]
) -> None:
    record = records["reloaded"]
    add(machines, "reloaded", record)
    daemon.start()
    old = daemon.wait_machine("reloaded", lambda m: m["instance"], what="an instance")["instance"]
    wait_until(
        lambda: len(alive(recorded(record / old))) >= 2 * PER_RUN,
        15,
        "leftovers of the first instance",
        daemon.describe,
    )

    add(machines, "reloaded", record, version="2.0.0")
    daemon.signal(signal.SIGHUP)
    new = daemon.wait_machine("reloaded", lambda m: m["version"] == "2.0.0", what="version 2")[
        "instance"
    ]
    assert new != old
    left_by_old = recorded(record / old)
    wait_until(
        lambda: not alive(left_by_old),
        END_WITHIN,
        f"the old instance's leftovers to end: {alive(left_by_old)}",
        daemon.describe,
    )
    # the new instance leaves processes too, and they are not ended with the old one's
    left_by_new = wait_until(
        lambda: alive(recorded(record / new)),
        10,
        "leftovers of the new instance",
        daemon.describe,
    )
    assert alive(left_by_new) == left_by_new
    assert daemon.stop() == 0
    assert alive(recorded(record)) == []
