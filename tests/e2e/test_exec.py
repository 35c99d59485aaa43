"""exec watchers: exit codes drive transitions; the command's environment and directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.daemon import (
    PARENT_ONLY_VAR,
    Daemon,
    MachinesDir,
    kill_quietly,
    pid_alive,
    read_pid,
    wait_until,
    watcher,
    write_atomic,
)

pytestmark = pytest.mark.e2e

PROBE = """
    name: probe
    version: 1.0.0
    initial_state: unknown
    transitions:
      # each state lists itself, so a repeated result is a self-transition: a no-op
      - name: healthy
        from: [unknown, healthy, unhealthy]
        destination: healthy
      - name: unhealthy
        from: [unknown, healthy, unhealthy]
        destination: unhealthy
    watchers:
      - name: check
        type: exec
        interval: 200ms
        success_transition: healthy
        fail_transition: unhealthy
        properties:
          command: ./check.sh --flag
          environment: [EXTRA=from-yaml]
"""

# records what it saw, then succeeds only while the file `mode` says ok
CHECK = """
    { echo "CWD=$(pwd)"; echo "ARGS=$*"; env; } > .env.partial && mv .env.partial env.out
    cp "$WATCHER_DATA" .data.partial && mv .data.partial watcher_data.json
    [ "$(cat mode 2>/dev/null)" = ok ] || { echo "mode is not ok" >&2; exit 1; }
"""


def _env_seen(directory: Path) -> dict[str, str] | None:
    try:
        text = (directory / "env.out").read_text()
    except FileNotFoundError:
        return None
    env = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value
    return env


def test_exit_codes_drive_transitions(daemon: Daemon, machines: MachinesDir) -> None:
    directory = machines.add("probe", PROBE, {"check.sh": CHECK})
    write_atomic(directory / "mode", "ok\n")
    daemon.start()

    m = daemon.wait_state("probe", "healthy")
    assert watcher(m, "check")["last_outcome"] == "success"
    assert m["seq"] == 1

    write_atomic(directory / "mode", "bad\n")
    m = daemon.wait_state("probe", "unhealthy")
    check = watcher(m, "check")
    assert check["last_outcome"] == "failure"
    assert "exit code 1" in check["last_detail"]
    assert "mode is not ok" in check["last_detail"]
    assert check["state"]["exit_code"] == 1
    assert m["seq"] == 2

    write_atomic(directory / "mode", "ok\n")
    m = daemon.wait_state("probe", "healthy")
    assert watcher(m, "check")["last_outcome"] == "success"
    assert m["seq"] == 3
    assert m["transitions_rejected"] == 0

    # the watcher keeps running on its interval while the state holds
    runs = watcher(m, "check")["runs"]
    m = daemon.wait_machine(
        "probe", lambda m: watcher(m, "check")["runs"] >= runs + 2, what="two more runs"
    )
    # ...and a repeated success is a self-transition: no new seq, no rejection
    assert (m["state"], m["seq"], m["transitions_rejected"]) == ("healthy", 3, 0)


def test_command_runs_in_machine_dir_with_minimal_env(
    daemon: Daemon, machines: MachinesDir
) -> None:
    directory = machines.add("probe", PROBE, {"check.sh": CHECK})
    write_atomic(directory / "mode", "ok\n")
    daemon.start()
    daemon.wait_state("probe", "healthy")

    # a run that started after the machine entered `healthy` sees that state
    def seen_in_healthy() -> dict[str, str] | None:
        env = _env_seen(directory)
        return env if env is not None and env.get("MACHINE_STATE") == "healthy" else None

    env = wait_until(seen_in_healthy, 10, "a check run in state healthy", daemon.describe)
    assert Path(env["CWD"]).resolve() == directory.resolve()
    assert env["ARGS"] == "--flag"
    assert env["MACHINE_NAME"] == "probe"
    assert env["MACHINE_WATCHER_NAME"] == "check"
    probe = daemon.machine("probe")
    assert probe is not None and env["STEWARD_MACHINE_INSTANCE"] == probe["instance"]
    assert env["EXTRA"] == "from-yaml"
    assert env["PATH"].split(":")[0] == str(directory)
    assert Path(env["WATCHER_DATA"]).is_absolute()
    assert json.loads((directory / "watcher_data.json").read_text()) == {}
    # minimal: nothing from the daemon's own environment leaks through
    assert PARENT_ONLY_VAR not in env
    assert "HOME" not in env
    assert "STEWARD_CONFIG" not in env


SLOW = """
    name: slow
    version: 1.0.0
    initial_state: waiting
    transitions:
      - {name: gave_up, from: [waiting], destination: stuck}
      - {name: lost, from: [stuck], destination: missing}
    watchers:
      - name: hang
        type: exec
        state_match: [waiting]
        fail_transition: gave_up
        properties:
          command: ./hang.sh
          timeout: 300ms
      - name: ghost
        type: exec
        state_match: [stuck]
        fail_transition: lost
        properties:
          command: no-such-command-anywhere
"""

# the script and its own child, both recording their pids, both outliving any timeout
HANG = """
    sleep 1000 &
    echo $! > .child.partial && mv .child.partial child.pid
    echo $$ > .script.partial && mv .script.partial script.pid
    wait
"""


def test_timeout_kills_the_process_group(daemon: Daemon, machines: MachinesDir) -> None:
    directory = machines.add("slow", SLOW, {"hang.sh": HANG})
    try:
        daemon.start()
        # waiting -(hang times out)-> stuck -(ghost cannot run)-> missing
        m = daemon.wait_state("slow", "missing")
        assert m["seq"] == 2
        hang = watcher(m, "hang")
        assert hang["last_outcome"] == "failure"
        assert "timed out" in hang["last_detail"]
        assert hang["state"]["timed_out"] is True
        pids = [read_pid(directory / "script.pid"), read_pid(directory / "child.pid")]
        assert all(pids), pids
        wait_until(
            lambda: not any(pid_alive(p) for p in pids if p),
            5,
            f"the timed out group {pids} to be killed",
            daemon.describe,
        )
        # a command that cannot be found is an error, which fires fail_transition
        ghost = watcher(m, "ghost")
        assert ghost["last_outcome"] == "error"
        assert "command not found: no-such-command-anywhere" in ghost["last_detail"]
    finally:
        for name in ("child.pid", "script.pid"):
            kill_quietly(read_pid(directory / name))


MOVER = """
    name: mover
    version: 1.0.0
    initial_state: a
    transitions:
      - {name: step, from: [a], destination: b}
      - {name: stay, from: [b], destination: b}
      - {name: bail, from: [a, b], destination: c}
    watchers:
      - name: slow
        type: exec
        state_match: [a, b]
        fail_transition: bail
        properties:
          command: ./slow.sh
"""

# fails, but only once the test lets it finish
SLOW_SH = """
    touch started
    while [ ! -e release ]; do sleep 0.05; done
    exit 1
"""


def test_result_of_a_check_started_in_an_older_state_is_dropped(
    daemon: Daemon, machines: MachinesDir
) -> None:
    directory = machines.add("mover", MOVER, {"slow.sh": SLOW_SH})
    daemon.start()
    wait_until(lambda: (directory / "started").exists(), 10, "the check to start", daemon.describe)

    daemon.transition("mover", "step")  # a -> b while the check runs
    (directory / "release").touch()
    daemon.wait_machine("mover", lambda m: watcher(m, "slow")["runs"] == 1, what="one run")
    # the queue is in order: once this self-transition is answered, the result was handled
    assert daemon.transition("mover", "stay")["changed"] is False

    m = daemon.wait_state("mover", "b")
    assert watcher(m, "slow")["last_outcome"] == "failure"
    assert (m["seq"], m["transitions_rejected"]) == (1, 0)  # `bail` was dropped, not fired
