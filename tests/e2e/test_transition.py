"""Manual transitions through `steward transition`, and the CLI's one-line errors."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, MachinesDir, run_cli

pytestmark = pytest.mark.e2e

DOOR = """
    name: door
    version: 1.0.0
    initial_state: closed
    transitions:
      - {name: open, from: [closed], destination: open}
      - {name: close, from: [open], destination: closed}
      - {name: lock, from: [closed], destination: locked}
      - {name: unlock, from: [locked], destination: closed}
      - {name: wedge, from: [open], destination: open}
"""


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    err = result.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("steward: error: "), err
    return err


def test_transition_succeeds_and_reports_seq(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("door", DOOR)
    daemon.start()
    daemon.wait_state("door", "closed")
    assert stat.S_IMODE(daemon.socket_path.stat().st_mode) == 0o660

    result = daemon.ctl("transition", "door", "open")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "door: open: closed -> open (seq 1)"

    result = daemon.ctl("transition", "door", "close", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["from_state"], data["to_state"], data["seq"]) == ("open", "closed", 2)
    assert (data["cause"], data["changed"]) == ("manual", True)

    daemon.transition("door", "open")
    result = daemon.ctl("transition", "door", "wedge")  # open -> open changes nothing
    assert result.returncode == 0, result.stderr
    assert "already in open" in result.stdout

    m = daemon.wait_state("door", "open")
    assert m["seq"] == 3
    assert m["transitions_fired"] == 3

    human = daemon.ctl("status")
    assert human.returncode == 0, human.stderr
    assert "door 1.0.0: open" in human.stdout
    assert "seq 3" in human.stdout


def test_invalid_transition_is_one_line_naming_the_state(
    daemon: Daemon, machines: MachinesDir
) -> None:
    machines.add("door", DOOR)
    daemon.start()
    daemon.transition("door", "open")

    result = daemon.ctl("transition", "door", "lock")
    assert result.returncode == 1
    err = _one_line_error(result)
    assert "'lock'" in err
    assert "'open'" in err  # the state it is in

    result = daemon.ctl("transition", "door", "fly")
    assert result.returncode == 1
    assert "no transition named 'fly'" in _one_line_error(result)

    m = daemon.wait_state("door", "open")
    assert m["seq"] == 1
    assert m["transitions_rejected"] == 2


def test_unknown_machine(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("door", DOOR)
    daemon.start()

    result = daemon.ctl("transition", "nosuch", "open")
    assert result.returncode == 1
    assert "no machine named 'nosuch'" in _one_line_error(result)

    result = daemon.ctl("status", "nosuch")
    assert result.returncode == 1
    assert "no machine named 'nosuch'" in _one_line_error(result)


def test_status_without_a_daemon_names_the_socket(daemon: Daemon, state_dir: Path) -> None:
    result = daemon.ctl("status", "--json")
    assert result.returncode == 1
    err = _one_line_error(result)
    assert "socket" in err
    assert str(state_dir / "steward.sock") in err

    result = daemon.ctl("transition", "door", "open")
    assert result.returncode == 1
    assert "socket" in _one_line_error(result)


def test_client_finds_the_daemon_through_steward_state_dir(
    daemon: Daemon, machines: MachinesDir
) -> None:
    machines.add("door", DOOR)
    daemon.start()
    result = run_cli(
        "status", "--json", env={**daemon.env, "STEWARD_STATE_DIR": str(daemon.state_dir)}
    )
    assert result.returncode == 0, result.stderr
    assert [m["name"] for m in json.loads(result.stdout)["machines"]] == ["door"]


def test_explicit_state_dir_beats_steward_socket_env(
    daemon: Daemon, machines: MachinesDir, tmp_path: Path
) -> None:
    machines.add("door", DOOR)
    daemon.start()
    env = {**daemon.env, "STEWARD_SOCKET": str(tmp_path / "other.sock")}
    result = run_cli("status", "--json", "--state-dir", str(daemon.state_dir), env=env)
    assert result.returncode == 0, result.stderr
