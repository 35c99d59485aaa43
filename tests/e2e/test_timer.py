"""timer watchers: fire fail_transition on expiry; cancelled when the state stops matching."""

from __future__ import annotations

import pytest

from tests.support.daemon import Daemon, MachinesDir, watcher

pytestmark = pytest.mark.e2e

KETTLE = """
    name: kettle
    version: 1.0.0
    initial_state: heating
    transitions:
      - {name: boil, from: [heating], destination: boiled}
      - {name: reheat, from: [boiled], destination: heating}
    watchers:
      - name: heat
        type: timer
        state_match: [heating]
        fail_transition: boil
        properties:
          timer: 500ms
"""

# `armed` explodes after 2 s unless disarmed; `safe` re-arms itself after 2.5 s. If disarming
# did not cancel the armed timer, it would run out while in `safe`, before `safe` re-arms.
BOMB = """
    name: bomb
    version: 1.0.0
    initial_state: idle
    transitions:
      - {name: arm, from: [idle], destination: armed}
      - {name: disarm, from: [armed], destination: safe}
      - {name: explode, from: [armed], destination: exploded}
      - {name: rearm, from: [safe], destination: armed}
    watchers:
      - name: fuse
        type: timer
        state_match: [armed]
        fail_transition: explode
        properties:
          timer: 2s
      - name: cooldown
        type: timer
        state_match: [safe]
        fail_transition: rearm
        properties:
          timer: 2500ms
"""


def test_timer_fires_fail_transition(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("kettle", KETTLE)
    daemon.start()

    m = daemon.wait_state("kettle", "boiled")
    assert m["since"] - daemon.status()["started_at"] >= 0.45  # not before the timer ran out
    heat = watcher(m, "heat")
    assert heat["last_outcome"] == "failure"
    assert heat["active"] is False
    assert m["seq"] == 1

    # entering the state again restarts the timer
    reheated_at = daemon.transition("kettle", "reheat")["at"]
    m = daemon.wait_machine("kettle", lambda m: m["seq"] == 3, what="boiled again")
    assert m["state"] == "boiled"
    assert m["since"] - reheated_at >= 0.45
    assert m["transitions_rejected"] == 0


def test_leaving_the_state_cancels_the_timer(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("bomb", BOMB)
    daemon.start()
    daemon.transition("bomb", "arm")
    result = daemon.transition("bomb", "disarm")
    assert result["to_state"] == "safe"

    m = daemon.wait_machine("bomb", lambda m: m["seq"] >= 3, timeout=15, what="re-armed")
    assert (m["state"], m["seq"]) == ("armed", 3)
    fuse = watcher(m, "fuse")
    # the first fuse never ran out (a late result would only be dropped, so count runs);
    # the second one, started by `rearm`, is running now and has 2 s to go
    assert (fuse["runs"], fuse["last_outcome"], fuse["active"]) == (0, None, True)
    assert m["transitions_rejected"] == 0
