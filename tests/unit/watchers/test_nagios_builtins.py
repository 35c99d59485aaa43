"""Choria's built-in nagios checks: heartbeat, goss (with a stand-in goss), choria_status
without NATS. choria_status against a real nats-server is in tests/integration."""

from __future__ import annotations

import json
from pathlib import Path

from steward.watchers.base import Outcome
from steward.watchers.nagios import NagiosWatcher
from tests.support.fakes import FakeClock, fake_context
from tests.support.machines import Handle, machine_yaml, parse, script


def nagios(tmp_path: Path, *props: str, clock: FakeClock | None = None) -> NagiosWatcher:
    spec = parse(machine_yaml("nagios", *props)).watchers[0]
    return NagiosWatcher(spec, Handle(tmp_path), fake_context(tmp_path, clock=clock))


async def test_heartbeat_is_ok_with_the_time() -> None:
    clock = FakeClock()
    result = await nagios(Path(), "builtin: heartbeat", clock=clock).check()
    assert result.outcome is Outcome.SUCCESS
    assert result.transition == "OK"
    assert result.payload["output"] == str(int(clock.time()))
    assert result.payload["plugin"] == "heartbeat"


def goss_stand_in(tmp_path: Path, failed: int) -> None:
    summary = {
        "summary": {
            "test-count": 4,
            "failed-count": failed,
            "summary-line": f"Count: 4, Failed: {failed}, Skipped: 0",
            "total-duration": 12_000_000,
        }
    }
    # the machine directory comes first on PATH: this `goss` is the one found
    script(tmp_path, "goss", f"echo \"$@\" > args\ncat <<'J'\n{json.dumps(summary)}\nJ\n")


async def test_goss_runs_the_gossfile_and_reports_failures(tmp_path: Path) -> None:
    goss_stand_in(tmp_path, failed=0)
    ok = await nagios(tmp_path, "builtin: goss", "gossfile: goss.yaml").check()
    assert (ok.outcome, ok.transition) == (Outcome.SUCCESS, "OK")
    assert ok.payload["output"] == "OK: Count: 4, Failed: 0, Skipped: 0"
    assert {p["label"]: p["value"] for p in ok.payload["perfdata"]} == {
        "checks": 4,
        "failed": 0,
        "runtime": 0.012,
    }
    args = (tmp_path / "args").read_text().split()
    assert args == [
        "--gossfile",
        str(tmp_path / "goss.yaml"),
        "validate",
        "--format",
        "json",
        "--no-color",
    ]
    goss_stand_in(tmp_path, failed=2)
    bad = await nagios(tmp_path, "builtin: goss_validate", "gossfile: goss.yaml").check()
    assert (bad.outcome, bad.transition) == (Outcome.FAILURE, "CRITICAL")


async def test_goss_missing_or_garbled_is_unknown(tmp_path: Path) -> None:
    missing = await nagios(tmp_path, "builtin: goss", "gossfile: goss.yaml").check()
    assert missing.transition == "UNKNOWN"
    assert missing.payload["output"] == "UNKNOWN: goss is not installed (not on PATH)"
    script(tmp_path, "goss", "echo 'not json'\n")
    garbled = await nagios(tmp_path, "builtin: goss", "gossfile: goss.yaml").check()
    assert garbled.transition == "UNKNOWN"
    assert garbled.payload["output"] == "UNKNOWN: goss output invalid: not json"


async def test_choria_status_without_nats_is_the_daemon_running() -> None:
    result = await nagios(Path(), "builtin: choria_status", "last_message: 5m").check()
    assert result.transition == "OK"
    assert "no NATS is configured" in result.payload["output"]


def test_certificate_and_token_expiry_are_accepted_with_a_warning() -> None:
    spec = parse(
        machine_yaml(
            "nagios",
            "builtin: choria_status",
            "last_message: 1h",
            "pubcert_expire: 24h",
            "token_expire: 24h",
        )
    )
    assert [str(w) for w in spec.warnings] == [
        "m.yaml:18:23: watchers[0].properties.pubcert_expire: warning: accepted and ignored: "
        "steward has no Choria certificate or token to check",
        "m.yaml:19:21: watchers[0].properties.token_expire: warning: accepted and ignored: "
        "steward has no Choria certificate or token to check",
    ]
