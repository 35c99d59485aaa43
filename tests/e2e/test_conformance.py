"""Choria's own machine definitions, unchanged: the daemon runs them, validate judges them."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.support.conformance import CORPUS
from tests.support.daemon import Daemon, MachinesDir

pytestmark = pytest.mark.e2e


def test_testmachine_and_subscriber_reach_their_states(
    daemon: Daemon, machines: MachinesDir
) -> None:
    for name in ("testmachine.yaml", "subscriber.yaml"):
        shutil.copy(CORPUS / name, machines.path / name)
    daemon.start()
    assert daemon.status()["problems"] == []

    # splay_start is 10 s: up to 10 s before any watcher runs, so allow plenty
    def arrived(status: dict[str, Any]) -> bool:
        states = {m["name"]: m["state"] for m in status["machines"]}
        return states.get("TestMachine") == "two" and states.get("Subscriber") == "one"

    status = daemon.wait_for(arrived, timeout=40, what="TestMachine two and Subscriber one")
    test_machine = daemon.machine("TestMachine", status)
    assert test_machine is not None
    assert test_machine["seq"] == 2  # unknown -> one -> two, nothing else
    subscriber = daemon.machine("Subscriber", status)
    assert subscriber is not None
    assert subscriber["seq"] == 1


def test_validate_machine_manager_names_unsupported_types(daemon: Daemon) -> None:
    result = daemon.cli("validate", str(CORPUS / "machine-manager.yaml"))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "'machines'" in out
    assert "'manage_machines'" in out
    # its kv watchers are supported: neither they nor their properties are named
    assert "'kv'" not in out
    for watcher in ("initial_specification", "specification"):
        assert f"'{watcher}'" not in out
    assert "Traceback" not in out


def test_validate_hvac_points_at_the_bad_transition(daemon: Daemon) -> None:
    result = daemon.cli("validate", str(CORPUS / "hvac.yaml"))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "hvac.yaml:51:25: watchers[1].success_transition:" in out
    assert "'idle'" in out


def test_validate_testmachine_and_subscriber(daemon: Daemon) -> None:
    result = daemon.cli(
        "validate", str(CORPUS / "testmachine.yaml"), str(CORPUS / "subscriber.yaml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TestMachine 0.0.1" in result.stdout
    assert "Subscriber 0.0.1" in result.stdout
