"""A broken machine file never stops the valid machines beside it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.daemon import Daemon, MachinesDir

pytestmark = pytest.mark.e2e

VALID = """
    name: {name}
    version: 1.0.0
    initial_state: idle
    transitions:
      - {{name: go, from: [idle], destination: running}}
    watchers:
      - name: starter
        type: exec
        state_match: [idle]
        success_transition: go
        properties:
          command: /bin/true
"""

# line 11, column 25: a transition that does not exist
BROKEN = """
    name: gamma
    version: 1.0.0
    initial_state: idle
    transitions:
      - name: go
        from: [idle]
        destination: busy
    watchers:
      - name: w
        type: exec
        success_transition: nosuch
        properties:
          command: /bin/true
"""


def test_valid_machines_run_and_the_broken_one_is_reported(
    daemon: Daemon, machines: MachinesDir
) -> None:
    machines.add("alpha", VALID.format(name="alpha"))
    machines.add("beta", VALID.format(name="beta"))
    machines.add("gamma", BROKEN)
    daemon.start()

    def both_running(status: dict[str, Any]) -> bool:
        states = {m["name"]: m["state"] for m in status["machines"]}
        return states == {"alpha": "running", "beta": "running"}

    status = daemon.wait_for(both_running, what="alpha and beta running, nothing else")
    assert status["problems"] == [
        {
            "file": "gamma/machine.yaml",
            "line": 11,
            "column": 25,
            "path": "watchers[0].success_transition",
            "message": "no transition named 'nosuch'",
            "severity": "error",
        }
    ]

    errors = [r for r in daemon.logs() if r["level"] == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["file"] == "gamma/machine.yaml"
    assert errors[0]["field"] == "watchers[0].success_transition"
    assert "gamma/machine.yaml:11:25:" in errors[0]["msg"]

    human = daemon.ctl("status")
    assert "rejected machine files (1):" in human.stdout
    assert "gamma/machine.yaml:11:25: watchers[0].success_transition:" in human.stdout


def test_yaml_syntax_error_is_reported_with_position(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("alpha", VALID.format(name="alpha"))
    machines.add_file("delta.yaml", "name: delta\nversion: [1.0\n")
    daemon.start()

    status = daemon.wait_for(
        lambda s: [m["state"] for m in s["machines"]] == ["running"], what="alpha running"
    )
    (problem,) = status["problems"]
    assert problem["file"] == "delta.yaml"
    assert problem["line"] > 0 and problem["column"] > 0
    assert "YAML" in problem["message"]


def test_hidden_temporary_and_editor_files_are_not_machines(
    daemon: Daemon, machines: MachinesDir
) -> None:
    machines.add("alpha", VALID.format(name="alpha"))
    garbage = "this: [is not a machine\n"
    machines.add_file(".hidden.yaml", garbage)
    machines.add_file("alpha.yaml.swp", garbage)
    machines.add_file("draft.yaml~", garbage)
    machines.add("upload-temp", garbage)
    machines.add(".git", garbage)
    daemon.start()

    status = daemon.wait_for(
        lambda s: [m["state"] for m in s["machines"]] == ["running"], what="alpha running"
    )
    assert status["problems"] == []


def test_group_writable_machine_file_is_refused(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("alpha", VALID.format(name="alpha"))
    loose = machines.add("loose", VALID.format(name="loose")) / "machine.yaml"
    loose.chmod(0o664)
    daemon.start()

    status = daemon.status()
    assert [m["name"] for m in status["machines"]] == ["alpha"]
    assert [p["file"] for p in status["problems"]] == ["loose/machine.yaml"]
    (problem,) = status["problems"]
    assert problem["message"] == (
        f"machine file {loose} is writable by group or others (mode 0664); fix: chmod go-w {loose}"
    )
    checked = daemon.cli("validate", str(loose))
    assert checked.returncode == 1
    assert "chmod go-w" in checked.stdout
    assert daemon.cli("validate", "--insecure-permissions", str(loose)).returncode == 0
