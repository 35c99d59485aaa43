"""Choria's own machine definitions, unchanged: the daemon runs them, validate judges them.

The corpus is tests/conformance/choria (see its README.md for each file's source).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.conformance import CORPUS, corpus_files
from tests.support.daemon import Daemon, MachinesDir, watcher, write_atomic, write_script

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


def test_validate_accepts_choria_machine_manager(daemon: Daemon) -> None:
    # its kv watchers fetch the spec, its machines watcher installs what the spec lists
    result = daemon.cli("validate", str(CORPUS / "machine-manager.yaml"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"ok: {CORPUS / 'machine-manager.yaml'}: machine_manager 0.0.2" in out
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


# --- more of the corpus, run unchanged ---------------------------------------------------------
# The machine files are copied as published; where a machine runs scripts that its source
# does not publish (or publishes as a binary), the test writes a stand-in beside it.


def add_corpus_machine(machines: MachinesDir, file: str, scripts: dict[str, str]) -> Path:
    """``<machines>/<stem>/machine.yaml``, the corpus file unchanged, with stand-in scripts."""
    directory = machines.path / Path(file).stem
    directory.mkdir()
    shutil.copy(CORPUS / file, directory / "machine.yaml")
    for name, body in scripts.items():
        write_script(directory / name, body)
    return directory


def test_echo_runs_its_command_and_stays_initial(daemon: Daemon, machines: MachinesDir) -> None:
    # machine-room's example: /bin/echo every 30s, no transitions to fire
    shutil.copy(CORPUS / "echo.yaml", machines.path / "echo.yaml")
    daemon.start()
    m = daemon.wait_machine(
        "echo", lambda m: watcher(m, "echo")["runs"] >= 1, what="the echo watcher to run"
    )
    echo = watcher(m, "echo")
    assert echo["last_outcome"] == "success", echo
    assert (m["state"], m["seq"]) == ("INITIAL", 0)


def test_container_manager_deploys_when_its_manifest_appears(
    daemon: Daemon, machines: MachinesDir
) -> None:
    # the 2019 blog post's machine: a file watcher on manifest.json, deploy.rb, check_running.rb
    directory = add_corpus_machine(
        machines,
        "container-manager.yaml",
        {
            "deploy.rb": "echo deployed >> deploys\n",
            "check_running.rb": "test -s deploys\n",
        },
    )
    daemon.start()

    # no manifest: the file watcher fails; no_manifest is unknown -> unknown, which records nothing
    m = daemon.wait_machine(
        "ContainerManager",
        lambda m: watcher(m, "manifest")["last_outcome"] == "failure",
        what="the manifest watcher to see no manifest.json",
    )
    assert (m["state"], m["seq"]) == ("unknown", 0)

    # the manifest appears: absent (unknown -> deploy), deploy.rb succeeds: deployed -> monitor
    write_atomic(directory / "manifest.json", '{"image": "registry.example.net/ops/example"}\n')
    m = daemon.wait_state("ContainerManager", "monitor", timeout=30)  # the watcher polls every 10s
    assert m["seq"] == 2
    assert (directory / "deploys").read_text() == "deployed\n"
    m = daemon.wait_machine(
        "ContainerManager",
        lambda m: watcher(m, "check_running")["last_outcome"] == "success",
        what="check_running to succeed",
    )
    assert (m["state"], m["seq"]) == ("monitor", 2)


def test_facts_gathers_and_goes_into_maintenance_and_back(
    daemon: Daemon, machines: MachinesDir
) -> None:
    # choria-compose's facts machine; upstream ./gather is a Go binary
    directory = add_corpus_machine(machines, "facts.yaml", {"gather": "echo '{}' > facts.json\n"})
    daemon.start()
    m = daemon.wait_machine(
        "facts",
        lambda m: watcher(m, "gather_facts")["last_outcome"] == "success",
        what="gather_facts to run",
    )
    assert (m["state"], m["seq"]) == ("GATHER", 0)
    assert (directory / "facts.json").read_text() == "{}\n"
    assert not watcher(m, "maintenance_timeout")["active"]

    daemon.transition("facts", "enter_maintenance")
    m = daemon.wait_machine(
        "facts",
        lambda m: watcher(m, "maintenance_timeout")["active"],
        what="the 24h maintenance timer to start",
    )
    assert m["state"] == "MAINTENANCE"
    assert not watcher(m, "gather_facts")["active"]

    daemon.transition("facts", "resume")
    m = daemon.wait_state("facts", "GATHER")
    assert m["seq"] == 2


# every file of the corpus through `steward validate`: the valid ones say ok, the others give
# positioned problems (the exact problems are checked in tests/unit/machine)
VALID = {
    "testmachine.yaml": "TestMachine 0.0.1",
    "subscriber.yaml": "Subscriber 0.0.1",
    "check_httpd.yaml": "check_httpd 1.0.0",
    "container-manager.yaml": "ContainerManager 1.0.0",
    "echo.yaml": "echo 0.0.1",
    "facts.yaml": "facts 0.0.1",
    "check_choria.yaml": "check_choria 1.0.0",
    "machine-manager.yaml": "machine_manager 0.0.2",
    "plugins-machines-manager.yaml": "machines_manager 0.0.2",
    "machine-room-machines-manager.yaml": "machines_manager 0.0.2",
    "external_agent_manager.yaml": "external_agent_manager 0.0.1",
}


def test_validate_judges_every_corpus_file(daemon: Daemon) -> None:
    # machine-room ships its own copy of go-choria's machines_manager: one name per node, so it
    # is judged on its own below
    copy = "machine-room-machines-manager.yaml"
    files = [f for f in corpus_files() if f.name != copy]
    alone = daemon.cli("validate", str(CORPUS / copy))
    assert alone.returncode == 0, alone.stdout + alone.stderr
    result = daemon.cli("validate", *map(str, files))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    for path in files:
        if path.name in VALID:
            assert f"ok: {path}: {VALID[path.name]}" in out
        else:
            assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: ", out, re.MULTILINE), path.name
            assert f"ok: {path}" not in out
