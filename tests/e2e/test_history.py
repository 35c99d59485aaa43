"""History: after kill -9 and a restart, `steward history` still shows the transitions before
it, with the watcher results that caused them, bounded by history.keep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import Daemon, MachinesDir

pytestmark = pytest.mark.e2e

PINGER = """
    name: pinger
    version: 1.0.0
    initial_state: idle
    transitions:
      - {name: recover, from: [idle, down], destination: up}
      - {name: fail, from: [up], destination: down}
      - {name: pause, from: [up], destination: paused}
    watchers:
      - name: ok
        type: exec
        state_match: [idle, down]
        success_transition: recover
        properties:
          command: ./ok.sh
      # fails twice, then passes (and stays up): idle up down up down up, seq 5
      - name: probe
        type: exec
        state_match: [up]
        fail_transition: fail
        properties:
          command: ./probe.sh
"""
OK = """
    echo healthy
"""
PROBE = """
    n=$(( $(cat fails 2>/dev/null || echo 0) + 1 ))
    echo "$n" > fails
    if [ "$n" -le 2 ]; then echo "broken $n" >&2; exit 3; fi
"""


def history(daemon: Daemon, *args: str) -> list[dict[str, Any]]:
    result = daemon.ctl("history", "pinger", "--json", *args)
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def test_history_survives_kill9_with_its_causes(
    daemon: Daemon, machines: MachinesDir, tmp_path: Path
) -> None:
    (tmp_path / "steward.yaml").write_text("history:\n  keep: 5\n")
    machines.add("pinger", PINGER, {"ok.sh": OK, "probe.sh": PROBE})
    daemon.start()
    daemon.wait_machine(
        "pinger", lambda m: m["seq"] == 5 and m["state"] == "up", timeout=20, what="seq 5, up"
    )
    daemon.transition("pinger", "pause")
    before = history(daemon)

    daemon.kill9()
    daemon.start()
    daemon.wait_state("pinger", "paused")
    after = history(daemon)

    assert after == before
    # history.keep: 5 of the 6 transitions, oldest first
    assert [(e["seq"], e["transition"], e["to_state"]) for e in after] == [
        (2, "fail", "down"),
        (3, "recover", "up"),
        (4, "fail", "down"),
        (5, "recover", "up"),
        (6, "pause", "paused"),
    ]
    failed = after[0]["cause"]
    assert (failed["text"], failed["watcher_type"], failed["outcome"]) == (
        "watcher probe",
        "exec",
        "failure",
    )
    assert failed["detail"] == "exit code 3: broken 1"
    assert (failed["result"]["exit_code"], failed["result"]["stderr"]) == (3, "broken 1\n")
    recovered = after[1]["cause"]
    assert (recovered["text"], recovered["outcome"]) == ("watcher ok", "success")
    assert (recovered["result"]["exit_code"], recovered["result"]["stdout"]) == (0, "healthy\n")
    assert after[-1]["cause"] == {"kind": "manual", "text": "manual"}
    assert [e["seq"] for e in history(daemon, "--limit", "2")] == [5, 6]

    # for people: a table, and the status line says what moved the machine last
    text = daemon.ctl("history", "pinger")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["SEQ", "AT", "TRANSITION", "FROM", "->", "TO", "CAUSE", "RESULT"]
    assert "fail" in lines[1] and "up -> down" in lines[1]
    assert "watcher probe" in lines[1] and "failure: exit code 3: broken 1" in lines[1]
    status = daemon.ctl("status", "pinger")
    assert "last: pause up -> paused by manual" in status.stdout

    missing = daemon.ctl("history", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "steward: error: no machine named 'nope' on this node"
