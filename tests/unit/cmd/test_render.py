"""Text for people: `steward history` and the last transition in `steward status`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from steward.cmd.render import cause_result, render_history, render_status
from tests.support.cli import invoke

AT = 1_700_000_000.0
EXEC_FAILED = {
    "kind": "watcher",
    "text": "watcher probe",
    "watcher": "probe",
    "watcher_type": "exec",
    "outcome": "failure",
    "detail": "exit code 3: broken",
    "result": {"exit_code": 3, "stdout": "", "stderr": "broken\n"},
}


def entry(seq: int, cause: dict[str, Any], transition: str = "fail") -> dict[str, Any]:
    return {
        "seq": seq,
        "at": AT + seq,
        "transition": transition,
        "from_state": "up",
        "to_state": "down",
        "version": "1.0.0",
        "cause": cause,
    }


def test_history_is_a_table_oldest_first_in_local_time() -> None:
    text = render_history([entry(7, EXEC_FAILED), entry(8, {"kind": "manual", "text": "manual"})])
    header, first, second = text.splitlines()
    assert header.split() == ["SEQ", "AT", "TRANSITION", "FROM", "->", "TO", "CAUSE", "RESULT"]
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(AT + 7))
    assert first.split(None, 3)[:3] == ["7", *local.split()]
    assert "up -> down  watcher probe  failure: exit code 3: broken" in first
    assert second.rstrip().endswith("manual")
    assert render_history([]) == "no transitions recorded\n"


def test_a_cause_result_says_outcome_detail_exit_code_and_output_head() -> None:
    assert cause_result(EXEC_FAILED) == "failure: exit code 3: broken"  # nothing said twice
    quiet = {**EXEC_FAILED, "detail": "", "result": {"exit_code": 0, "stdout": "\n ok \nmore"}}
    assert cause_result(quiet) == "failure: exit code 0: ok"
    probe = {"kind": "watcher", "outcome": "success", "detail": "HTTP 200", "result": {}}
    assert cause_result(probe) == "success: HTTP 200"
    long = {**probe, "detail": "x" * 200}
    assert len(cause_result(long)) == 72 and cause_result(long).endswith("…")
    assert cause_result({"kind": "manual", "text": "manual"}) == ""
    assert cause_result({"kind": "subscribe", "text": "subscribe a.go"}) == ""


def test_status_names_what_moved_each_machine_last() -> None:
    machine = {
        "name": "web",
        "version": "1.0.0",
        "state": "down",
        "since": AT,
        "seq": 7,
        "watchers": [],
        "last_transition": entry(7, EXEC_FAILED),
    }
    text = render_status({"node": "n", "machines": [machine]}, now=AT + 60)
    assert "  last: fail up -> down by watcher probe (failure: exit code 3: broken)" in text
    fresh = {**machine, "seq": 0, "last_transition": None}
    assert "last:" not in render_status({"node": "n", "machines": [fresh]}, now=AT)


def test_history_without_a_daemon_is_one_line(tmp_path: Path) -> None:
    result = invoke("history", "web", "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.startswith("steward: error: no steward daemon socket at ")
    assert len(result.output.strip().splitlines()) == 1


def test_status_says_how_the_fleet_bucket_is_kept() -> None:
    fleet = {
        "bucket": "STEWARD_FLEET",
        "connected": True,
        "pending": 0,
        "written": 12,
        "heartbeats": 3,
        "last_error": None,
    }
    text = render_status({"node": "n", "machines": [], "fleet": fleet}, now=AT)
    assert "fleet: bucket STEWARD_FLEET, up to date; 12 keys written, 3 heartbeats" in text
    down = {**fleet, "connected": False, "last_error": "fleet bucket X: timeout"}
    assert "waiting for NATS" in render_status({"node": "n", "machines": [], "fleet": down})
    assert "fleet:" not in render_status({"node": "n", "machines": [], "fleet": None})
