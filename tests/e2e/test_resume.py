"""Persistence: after kill -9 a machine resumes its state, data and seq; seq never repeats."""

from __future__ import annotations

import pytest

from tests.support.daemon import Daemon, MachinesDir, watcher

pytestmark = pytest.mark.e2e

STEPPER = """
    name: stepper
    version: 1.0.0
    initial_state: a
    transitions:
      - {name: to_b, from: [a, c], destination: b}
      - {name: to_c, from: [b], destination: c}
    watchers:
      # runs only in `a`, so after a resume in another state its data can only be the saved one
      - name: mark
        type: exec
        state_match: [a]
        properties:
          command: ./mark.sh
          parse_as_data: true
"""
MARK = """
    echo '{"marked": "yes"}'
"""

FORGETFUL = """
    name: forgetful
    version: 1.0.0
    initial_state: a
    resume: false
    transitions:
      - {name: to_b, from: [a], destination: b}
      - {name: to_c, from: [b], destination: c}
"""


def test_kill9_resumes_state_data_and_seq(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("stepper", STEPPER, {"mark.sh": MARK})
    daemon.start()
    daemon.wait_machine("stepper", lambda m: m["data"] == {"marked": "yes"}, what="marked")
    for name in ("to_b", "to_c", "to_b", "to_c"):
        daemon.transition("stepper", name)
    before = daemon.wait_state("stepper", "c")
    assert before["seq"] == 4

    daemon.kill9()
    # the socket file is left behind; the CLI says it cannot reach the daemon
    result = daemon.ctl("status")
    assert result.returncode == 1
    assert "steward.sock" in result.stderr
    assert "Traceback" not in result.stderr

    daemon.start()
    after = daemon.wait_state("stepper", "c")
    assert after["resumed"] is True
    assert after["seq"] == 4
    assert after["since"] == pytest.approx(before["since"])
    assert after["data"] == {"marked": "yes"}
    assert after["instance"] != before["instance"]
    assert watcher(after, "mark")["runs"] == 0  # not active in `c`

    assert daemon.transition("stepper", "to_b")["seq"] == 5


def test_resume_false_starts_over_but_seq_continues(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("forgetful", FORGETFUL)
    daemon.start()
    daemon.transition("forgetful", "to_b")
    assert daemon.transition("forgetful", "to_c")["seq"] == 2

    daemon.kill9()
    daemon.start()
    m = daemon.wait_state("forgetful", "a")
    assert m["resumed"] is False
    assert m["seq"] == 2
    assert daemon.transition("forgetful", "to_b")["seq"] == 3


def test_saved_state_that_no_longer_exists(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("stepper", STEPPER, {"mark.sh": MARK})
    daemon.start()
    daemon.transition("stepper", "to_b")
    daemon.transition("stepper", "to_c")
    assert daemon.stop() == 0

    # version 2 has no state `c`: start in the initial state, keep counting
    version_2 = (
        STEPPER.replace("1.0.0", "2.0.0")
        .replace("a, c", "a")
        .replace("      - {name: to_c, from: [b], destination: c}\n", "")
    )
    assert "destination: c" not in version_2
    machines.add("stepper", version_2)
    daemon.start()
    m = daemon.wait_state("stepper", "a")
    assert (m["version"], m["resumed"], m["seq"]) == ("2.0.0", False, 2)
    assert any(
        r["msg"].startswith("saved state no longer exists") and r.get("state") == "c"
        for r in daemon.logs()
    )
    assert daemon.transition("stepper", "to_b")["seq"] == 3


def test_second_daemon_on_the_same_state_dir_is_refused(
    daemon: Daemon, machines: MachinesDir
) -> None:
    machines.add("forgetful", FORGETFUL)
    daemon.start()
    second = daemon.spawn()
    try:
        code = second.wait(20)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert code == 1
    assert f"pid {daemon.pid}" in daemon.log_text()
    assert "using state dir" in daemon.log_text()
    # the first one is unaffected
    assert daemon.running
    daemon.wait_state("forgetful", "a")
