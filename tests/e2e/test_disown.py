"""exec ``disown`` (Choria's): the command runs on when its watcher is cancelled, its machine
is removed and the daemon stops — where an ordinary command and what it leaves are killed."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, MachinesDir, kill_quietly, pid_alive, wait_until

pytestmark = pytest.mark.e2e

MACHINE = """
    name: {name}
    version: 1.0.0
    initial_state: running
    transitions:
      - {{name: done, from: [running], destination: finished}}
    watchers:
      - name: upgrade
        type: exec
        state_match: [running]
        success_transition: done
        properties:
          command: ./upgrade.sh
          disown: {disown}
          timeout: 1s
          environment: [RECORD={record}]
"""

# an upgrade that takes longer than the daemon's life: records its pid and a child's, sleeps
UPGRADE = """
    echo $$ > "$RECORD/script"
    sleep 1000 &
    echo $! > "$RECORD/child"
    wait
"""


@pytest.fixture
def records(tmp_path: Path) -> Iterator[dict[str, Path]]:
    dirs = {name: tmp_path / f"record-{name}" for name in ("disowned", "owned")}
    for d in dirs.values():
        d.mkdir()
    yield dirs
    for d in dirs.values():
        for f in d.iterdir():
            kill_quietly(int(f.read_text()))


def pids(record: Path) -> list[int]:
    return [int((record / f).read_text()) for f in ("script", "child") if (record / f).exists()]


def test_a_disowned_command_outlives_its_timeout_machine_and_daemon(
    daemon: Daemon, machines: MachinesDir, records: dict[str, Path]
) -> None:
    for name, disown in (("disowned", "true"), ("owned", "false")):
        definition = MACHINE.format(name=name, disown=disown, record=records[name])
        machines.add(name, definition, {"upgrade.sh": UPGRADE})
    daemon.start()
    wait_until(
        lambda: len(pids(records["disowned"])) == 2 and len(pids(records["owned"])) == 2,
        15,
        "both commands to start",
        daemon.describe,
    )
    disowned = pids(records["disowned"])
    owned = pids(records["owned"])
    # the owned one is killed by its 1s timeout; the disowned one has no timeout
    wait_until(lambda: not any(pid_alive(p) for p in owned), 10, "the timeout", daemon.describe)
    assert all(pid_alive(p) for p in disowned)
    watcher = daemon.wait_machine("disowned", lambda m: m, what="status")["watchers"][0]
    assert watcher["runs"] == 0  # its check still waits for the exit

    shutil.rmtree(machines.path / "disowned")  # the machine goes: its watcher is cancelled
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda s: [m["name"] for m in s["machines"]] == ["owned"], what="removed")
    assert daemon.stop() == 0
    assert all(pid_alive(p) for p in disowned), "a disowned command was killed"
