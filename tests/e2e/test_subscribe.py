"""Machines on one node: `subscribe` follows another machine's transitions, and
`foreign_state_required` gates a watcher on another machine's state."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.daemon import Daemon, MachinesDir, watcher

pytestmark = pytest.mark.e2e

LEADER = """
    name: leader
    version: 1.0.0
    initial_state: follower
    transitions:
      - {name: promote, from: [follower], destination: leading}
      - {name: demote, from: [leading, paused], destination: follower}
      - {name: pause, from: [leading], destination: paused}
      - {name: unpause, from: [paused], destination: leading}
"""

WORKER = """
    name: worker
    version: 1.0.0
    initial_state: idle
    transitions:
      - name: start
        from: [idle]
        destination: working
        subscribe:
          - {machine_name: leader, event: promote}
      - name: stop
        from: [working]
        destination: idle
        subscribe:
          - {machine_name: leader, event: demote}
    watchers:
      - name: beat
        type: exec
        state_match: [working]
        foreign_state_required:
          - {machine_name: leader, state: leading}
        interval: 200ms
        properties:
          command: /bin/true
"""


def _beat(daemon: Daemon) -> dict[str, Any]:
    m = daemon.machine("worker")
    assert m is not None
    return watcher(m, "beat")


def test_subscribe_and_foreign_state(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("leader", LEADER)
    machines.add("worker", WORKER)
    daemon.start()
    m = daemon.wait_state("worker", "idle")
    assert watcher(m, "beat")["active"] is False

    # leader.promote -> worker.start, and the beat runs (working + leader leading)
    daemon.transition("leader", "promote")
    m = daemon.wait_machine(
        "worker",
        lambda m: m["state"] == "working" and watcher(m, "beat")["runs"] >= 2,
        what="working, beating",
    )
    assert m["seq"] == 1
    assert watcher(m, "beat")["active"] is True

    # leader leaves `leading` without a subscribed event: worker stays, beat stops
    daemon.transition("leader", "pause")
    m = daemon.wait_machine(
        "worker", lambda m: not watcher(m, "beat")["active"], what="beat inactive"
    )
    assert m["state"] == "working"
    assert m["seq"] == 1

    daemon.transition("leader", "unpause")
    runs = _beat(daemon)["runs"]
    daemon.wait_machine(
        "worker",
        lambda m: watcher(m, "beat")["active"] and watcher(m, "beat")["runs"] > runs,
        what="beating again",
    )

    # leader.demote -> worker.stop
    daemon.transition("leader", "demote")
    m = daemon.wait_state("worker", "idle")
    assert m["seq"] == 2
    assert watcher(m, "beat")["active"] is False
    assert m["transitions_rejected"] == 0
