"""SIGHUP rescans: new machines start, an invalid change keeps the old, a removed one stops."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.support.daemon import Daemon, MachinesDir

pytestmark = pytest.mark.e2e

MACHINE = """
    name: {name}
    version: {version}
    initial_state: idle
    transitions:
      - {{name: go, from: [idle], destination: busy}}
      - {{name: rest, from: [busy], destination: idle}}
"""


def _names(status: dict[str, Any]) -> set[str]:
    return {m["name"] for m in status["machines"]}


def test_sighup_adds_keeps_replaces_and_removes(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("base", MACHINE.format(name="base", version="1.0.0"))
    daemon.start()
    base = daemon.wait_state("base", "idle")

    # a new machine appears
    machines.add("extra", MACHINE.format(name="extra", version="1.0.0"))
    daemon.signal(signal.SIGHUP)
    extra = daemon.wait_state("extra", "idle")
    daemon.transition("extra", "go")

    # an invalid new version is reported and the running one keeps going
    broken = machines.path / "extra" / "machine.yaml"
    broken.write_text(broken.read_text().replace("version: 1.0.0", "version: banana"))
    daemon.signal(signal.SIGHUP)
    status = daemon.wait_for(
        lambda s: any(p["file"] == "extra/machine.yaml" for p in s["problems"]),
        what="a problem for extra/machine.yaml",
    )
    (problem,) = status["problems"]
    assert (problem["line"], problem["column"], problem["path"]) == (2, 10, "version")
    kept = daemon.machine("extra", status)
    assert kept is not None
    assert (kept["state"], kept["instance"]) == ("busy", extra["instance"])
    assert any(r["msg"].startswith("keeping the running version of extra") for r in daemon.logs())

    # a valid new version replaces it, resuming its state
    machines.add("extra", MACHINE.format(name="extra", version="2.0.0"))
    daemon.signal(signal.SIGHUP)
    replaced = daemon.wait_machine("extra", lambda m: m["version"] == "2.0.0", what="version 2")
    assert replaced["instance"] != extra["instance"]
    assert (replaced["state"], replaced["seq"], replaced["resumed"]) == ("busy", 1, True)
    assert daemon.status()["problems"] == []

    # a removed machine stops
    broken.unlink()
    (machines.path / "extra").rmdir()
    daemon.signal(signal.SIGHUP)
    status = daemon.wait_for(lambda s: _names(s) == {"base"}, what="extra gone")

    # the machine that never changed was never touched
    still = daemon.machine("base", status)
    assert still is not None
    assert still["instance"] == base["instance"]
    assert daemon.running
