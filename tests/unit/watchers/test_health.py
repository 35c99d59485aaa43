"""health, nagios and schedule: thresholds, named transitions, the schedule watcher on a fake
clock, and the validation messages of all three."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from steward.machine.spec import WatcherSpec
from steward.watchers.base import Outcome, WatcherResult
from steward.watchers.cron import Windows
from steward.watchers.health import HealthProperties, HealthWatcher, Streak, Verdict, verdict
from steward.watchers.nagios import NagiosProperties
from steward.watchers.probes import CommandProbe, HttpProbe, Status, StatusRange, TcpProbe
from steward.watchers.schedule import ScheduleProperties, ScheduleWatcher
from tests.support.fakes import FakeClock, fake_context, settle
from tests.support.machines import (
    Handle,
    machine_spec,
    machine_yaml,
    messages,
    parse,
    script,
    w,
)

# --- verdicts and thresholds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "warning_is_failure", "expected"),
    [
        (Status.OK, False, Verdict.SUCCESS),
        (Status.WARNING, False, Verdict.NEITHER),
        (Status.WARNING, True, Verdict.FAILURE),
        (Status.CRITICAL, False, Verdict.FAILURE),
        (Status.UNKNOWN, False, Verdict.FAILURE),
    ],
)
def test_verdicts(status: Status, warning_is_failure: bool, expected: Verdict) -> None:
    assert verdict(status, warning_is_failure) is expected


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, Status.OK),
        (1, Status.WARNING),
        (2, Status.CRITICAL),
        (3, Status.UNKNOWN),
        (4, Status.UNKNOWN),
        (127, Status.UNKNOWN),
        (-9, Status.UNKNOWN),
        (None, Status.UNKNOWN),
    ],
)
def test_exit_codes(code: int | None, status: Status) -> None:
    assert Status.from_exit_code(code) is status


def test_failure_threshold_needs_consecutive_failures() -> None:
    s = Streak(success_threshold=1, failure_threshold=3)
    F, S, N = Verdict.FAILURE, Verdict.SUCCESS, Verdict.NEITHER
    outcomes = [s.record(v) for v in (F, F, S, F, F, F, F, N, F)]
    U = Outcome.UNCHANGED
    assert outcomes == [U, U, Outcome.SUCCESS, U, U, Outcome.FAILURE, Outcome.FAILURE, U, U]


def test_success_threshold_needs_consecutive_successes() -> None:
    s = Streak(success_threshold=2, failure_threshold=1)
    S, F = Verdict.SUCCESS, Verdict.FAILURE
    outcomes = [s.record(v) for v in (S, F, S, S, S)]
    U = Outcome.UNCHANGED
    assert outcomes == [U, Outcome.FAILURE, U, Outcome.SUCCESS, Outcome.SUCCESS]


def plugin_watcher(tmp_path: Path, codes: list[int], **props: Any) -> HealthWatcher:
    """A health watcher whose plugin exits with the next of ``codes`` on each run."""
    counter = tmp_path / "n"
    counter.write_text("0")
    cases = " ".join(f"{i}) code={c};;" for i, c in enumerate(codes))
    script(
        tmp_path,
        "plugin.sh",
        f"""
        n=$(cat {counter}); echo $((n + 1)) > {counter}
        case $n in {cases} *) code=3;; esac
        echo "STATUS $code - run $n | runs=$n;;;0"
        exit $code
        """,
    )
    properties = HealthProperties(CommandProbe("./plugin.sh", ("./plugin.sh",)), **props)
    spec = WatcherSpec(name="probe", type="health", properties=properties)
    return HealthWatcher(spec, Handle(tmp_path), fake_context(tmp_path))


async def test_thresholds_through_real_plugin_runs(tmp_path: Path) -> None:
    watcher = plugin_watcher(
        tmp_path, [2, 2, 1, 2, 2, 0, 0], failure_threshold=2, success_threshold=2
    )
    results = [await watcher.check() for _ in range(7)]
    assert [r.outcome for r in results] == [
        Outcome.UNCHANGED,
        Outcome.FAILURE,
        Outcome.UNCHANGED,  # WARNING: neither, breaks the streak
        Outcome.UNCHANGED,
        Outcome.FAILURE,
        Outcome.UNCHANGED,
        Outcome.SUCCESS,
    ]
    assert results[0].detail == "CRITICAL: STATUS 2 - run 0 (1 of 2 in a row)"
    assert results[2].detail == "WARNING: STATUS 1 - run 2"
    last = results[-1].payload
    assert last["status"] == "OK"
    assert last["perfdata"] == [
        {
            "label": "runs",
            "value": 6.0,
            "uom": "",
            "warn": None,
            "crit": None,
            "min": 0.0,
            "max": None,
        }
    ]
    assert last["consecutive_successes"] == 2
    assert [h["status"] for h in last["history"]] == [
        "OK",
        "OK",
        "CRITICAL",
        "CRITICAL",
        "WARNING",
        "CRITICAL",
        "CRITICAL",
    ]


async def test_warning_is_failure(tmp_path: Path) -> None:
    watcher = plugin_watcher(tmp_path, [1], warning_is_failure=True)
    assert (await watcher.check()).outcome is Outcome.FAILURE


async def test_a_missing_plugin_is_unknown(tmp_path: Path) -> None:
    properties = HealthProperties(CommandProbe("nope-xyz", ("nope-xyz",)))
    spec = WatcherSpec(name="probe", type="health", properties=properties)
    watcher = HealthWatcher(spec, Handle(tmp_path), fake_context(tmp_path))
    result = await watcher.check()
    assert result.outcome is Outcome.FAILURE
    assert result.payload["status"] == "UNKNOWN"
    assert result.payload["output"] == "UNKNOWN - command not found: nope-xyz"


# --- named transitions (nagios) through the runtime -------------------------------------------


@pytest.mark.parametrize(
    ("named", "outcome", "state"),
    [
        ("park", Outcome.UNCHANGED, "c"),  # defined: fired instead of the outcome's
        ("park", Outcome.SUCCESS, "c"),
        ("WARNING", Outcome.SUCCESS, "b"),  # not defined: the outcome's transition
        ("WARNING", Outcome.UNCHANGED, "a"),
    ],
)
async def test_a_result_can_name_its_transition(
    harnesses: Any, named: str, outcome: Outcome, state: str
) -> None:
    h = harnesses(machine_spec(w("probe", success="up")))
    await h.start()
    h.watcher("probe").results.put_nowait(WatcherResult(outcome, "x", transition=named))
    await settle()
    assert h.machine.state == state


# --- the schedule watcher on a fake clock ------------------------------------------------------


def schedule_watcher(*exprs: str, minutes: float, splay: float = 0.0) -> tuple[Any, FakeClock]:
    clock = FakeClock()  # starts at 2023-11-14 22:13:20 UTC
    properties = ScheduleProperties(
        Windows(exprs, timedelta(minutes=minutes), ZoneInfo("UTC")), exprs, "UTC", splay
    )
    spec = WatcherSpec(name="window", type="schedule", properties=properties)
    watcher = ScheduleWatcher(spec, Handle(Path()), fake_context(clock=clock))
    return watcher, clock


async def test_schedule_reports_open_at_start_then_each_boundary() -> None:
    watcher, clock = schedule_watcher("*/10 * * * *", minutes=5)  # open 22:10-22:15
    watcher.activate()
    await settle()
    results = watcher.machine.results
    assert [r.outcome for r in results] == [Outcome.SUCCESS]
    assert results[0].payload["until"] == "2023-11-14T22:15:00+00:00"
    await clock.advance(99)
    assert len(results) == 1
    await clock.advance(1)  # 22:15:00
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.FAILURE]
    assert results[1].detail == "window closed until 2023-11-14T22:20:00+00:00"
    await clock.advance(300)  # 22:20:00
    assert [r.outcome for r in results][-1] is Outcome.SUCCESS
    await clock.advance(24 * 3600)
    assert len(results) == 3 + 2 * 144
    await watcher.close()


async def test_schedule_started_outside_a_window_reports_closed_once() -> None:
    watcher, clock = schedule_watcher("0 23 * * *", minutes=30)
    watcher.activate()
    await settle()
    assert [r.outcome for r in watcher.machine.results] == [Outcome.FAILURE]
    await clock.advance(46 * 60 + 39)
    assert len(watcher.machine.results) == 1
    await clock.advance(1)  # 23:00:00
    assert [r.outcome for r in watcher.machine.results] == [Outcome.FAILURE, Outcome.SUCCESS]
    await watcher.close()


async def test_schedule_restart_reports_only_changes() -> None:
    watcher, _ = schedule_watcher("*/10 * * * *", minutes=5)
    watcher.activate()
    await settle()
    watcher.activate()  # a state entry restarts it: the window is still open, nothing new
    await settle()
    assert len(watcher.machine.results) == 1
    await watcher.close()


async def test_schedule_start_splay_delays_the_opening() -> None:
    watcher, clock = schedule_watcher("0 23 * * *", minutes=30, splay=600)
    watcher.activate()
    await settle()
    await clock.advance(46 * 60 + 40)  # 23:00:00
    assert len(watcher.machine.results) == 1
    await clock.advance(600)
    assert [r.outcome for r in watcher.machine.results][-1] is Outcome.SUCCESS
    await watcher.close()


# --- validation -------------------------------------------------------------------------------


def test_valid_health_properties() -> None:
    spec = parse(
        machine_yaml(
            "health",
            "command: check_x -w 1 -c 2",
            "timeout: 3s",
            "failure_threshold: 3",
            "warning_is_failure: true",
        )
    )
    assert spec.watchers[0].properties == HealthProperties(
        CommandProbe("check_x -w 1 -c 2", ("check_x", "-w", "1", "-c", "2"), 3.0),
        failure_threshold=3,
        warning_is_failure=True,
    )
    spec = parse(
        machine_yaml(
            "health",
            "http:",
            "  url: http://127.0.0.1:8080/health",
            "  method: head",
            "  headers: {Host: example.org}",
            "  expect_status: [200, '300-302']",
            "  body_regex: ok",
            "  timeout: 2s",
        )
    )
    assert spec.watchers[0].properties.probe == HttpProbe(
        "http://127.0.0.1:8080/health",
        "HEAD",
        (("Host", "example.org"),),
        (StatusRange(200, 200), StatusRange(300, 302)),
        "ok",
        2.0,
    )
    spec = parse(machine_yaml("health", "tcp: {address: '[::1]:5432'}"))
    assert spec.watchers[0].properties.probe == TcpProbe("::1", 5432, 10.0)


def test_valid_nagios_and_schedule_properties() -> None:
    spec = parse(
        machine_yaml(
            "nagios", "plugin: /usr/lib/nagios/plugins/check_load -r", "annotations: {team: ops}"
        )
    )
    props = spec.watchers[0].properties
    assert props == NagiosProperties(
        CommandProbe(
            "/usr/lib/nagios/plugins/check_load -r", ("/usr/lib/nagios/plugins/check_load", "-r")
        ),
        annotations=(("team", "ops"),),
    )
    spec = parse(
        machine_yaml(
            "schedule",
            "schedules: ['0 2 * * SAT,SUN', '@daily']",
            "duration: 1h",
            "timezone: Europe/Berlin",
            "start_splay: 5m",
        )
    )
    props = spec.watchers[0].properties
    assert props.windows.expressions == ("0 2 * * SAT,SUN", "0 0 * * *")
    assert (props.timezone, props.start_splay) == ("Europe/Berlin", 300.0)


HEALTH_KNOWN = (
    "command, failure_threshold, http, success_threshold, tcp, timeout, warning_is_failure"
)

BAD_PROPERTIES = [
    pytest.param(
        machine_yaml("health"),
        ["m.yaml:12:5: watchers[0]: properties need one of 'command', 'http' or 'tcp'"],
        id="health-no-probe",
    ),
    pytest.param(
        machine_yaml(
            "health", "command: check_x", "tcp: {address: 'db:5432'}", "http: {url: 'http://x/'}"
        ),
        [
            "m.yaml:17:12: watchers[0].properties.tcp: 'command' is already set: "
            "use only one of command, http, tcp",
            "m.yaml:18:13: watchers[0].properties.http: 'command' is already set: "
            "use only one of command, http, tcp",
        ],
        id="health-two-probes",
    ),
    pytest.param(
        machine_yaml("health", "command: x", "failure_threshold: 0", "success_threshold: -1"),
        [
            "m.yaml:17:26: watchers[0].properties.failure_threshold: must be at least 1, got 0",
            "m.yaml:18:26: watchers[0].properties.success_threshold: must be at least 1, got -1",
        ],
        id="health-thresholds",
    ),
    pytest.param(
        machine_yaml("health", "command: x", "comand: y"),
        [
            f"m.yaml:17:7: watchers[0].properties.comand: unknown field 'comand' in health "
            f"properties (known: {HEALTH_KNOWN})"
        ],
        id="health-unknown-key",
    ),
    pytest.param(
        machine_yaml("health", "tcp: {address: 'db:5432'}", "timeout: 1s"),
        [
            "m.yaml:17:16: watchers[0].properties.timeout: applies to 'command' only; "
            "set http.timeout or tcp.timeout"
        ],
        id="health-timeout-without-command",
    ),
    pytest.param(
        machine_yaml(
            "health",
            "http:",
            "  url: ftp://x/",
            "  method: 'GE T'",
            "  expect_status: [200, '600-700', ok]",
            "  body_regex: '(('",
            "  verb: x",
        ),
        [
            "m.yaml:17:14: watchers[0].properties.http.url: must be an http:// or https:// "
            "URL with a host, got 'ftp://x/'",
            "m.yaml:18:17: watchers[0].properties.http.method: not an HTTP method: 'GE T'",
            "m.yaml:19:24: watchers[0].properties.http.expect_status: '600-700' is not an "
            "HTTP status code (100-599) or a range such as '200-299'",
            "m.yaml:19:24: watchers[0].properties.http.expect_status: 'ok' is not an "
            "HTTP status code (100-599) or a range such as '200-299'",
            "m.yaml:20:21: watchers[0].properties.http.body_regex: invalid regular "
            "expression: missing ), unterminated subpattern at position 1",
            "m.yaml:21:9: watchers[0].properties.http.verb: unknown field 'verb' in http "
            "(known: body_regex, expect_status, headers, method, timeout, url)",
        ],
        id="http-everything-wrong",
    ),
    pytest.param(
        machine_yaml("health", "tcp: {address: 'db'}"),
        [
            "m.yaml:16:22: watchers[0].properties.tcp.address: must be host:port with a port "
            "1-65535, got 'db'"
        ],
        id="tcp-no-port",
    ),
    pytest.param(
        machine_yaml("health", "tcp: {address: 'db:70000'}"),
        [
            "m.yaml:16:22: watchers[0].properties.tcp.address: must be host:port with a port "
            "1-65535, got 'db:70000'"
        ],
        id="tcp-bad-port",
    ),
    pytest.param(
        machine_yaml("nagios", "plugin: 'check_x \"unclosed'"),
        ["m.yaml:16:15: watchers[0].properties.plugin: cannot split command: No closing quotation"],
        id="nagios-bad-plugin",
    ),
    pytest.param(
        machine_yaml("nagios", "builtin: ping"),
        [
            "m.yaml:16:16: watchers[0].properties.builtin: must be one of heartbeat, goss, "
            "choria_status, got 'ping'"
        ],
        id="nagios-unknown-builtin",
    ),
    pytest.param(
        machine_yaml("nagios", "builtin: heartbeat", "plugin: check_x"),
        ["m.yaml:17:15: watchers[0].properties.plugin: set either plugin or builtin, not both"],
        id="nagios-builtin-and-plugin",
    ),
    pytest.param(
        machine_yaml("nagios", "builtin: goss"),
        ["m.yaml:16:7: watchers[0].properties: the goss builtin needs 'gossfile'"],
        id="nagios-goss-without-gossfile",
    ),
    pytest.param(
        machine_yaml("nagios", "builtin: choria_status"),
        ["m.yaml:16:7: watchers[0].properties: the choria_status builtin needs 'last_message'"],
        id="nagios-choria-status-without-last-message",
    ),
    pytest.param(
        machine_yaml(
            "schedule",
            "schedules: ['0 2 * * *', '0 25 * * *', '@fortnightly']",
            "duration: 1h",
            "timezone: Mars/Olympus",
        ),
        [
            "m.yaml:16:32: watchers[0].properties.schedules[1]: invalid cron expression "
            "'0 25 * * *': Bad hour",
            "m.yaml:16:46: watchers[0].properties.schedules[2]: unknown macro '@fortnightly' "
            "(known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)",
            "m.yaml:18:17: watchers[0].properties.timezone: unknown time zone 'Mars/Olympus' "
            "(use an IANA name such as Europe/Berlin)",
        ],
        id="schedule-bad-cron-and-zone",
    ),
    pytest.param(
        machine_yaml("schedule", "schedules: []", "duration: 10", "start_splay: 1h"),
        [
            "m.yaml:16:18: watchers[0].properties.schedules: must list at least one entry",
            "m.yaml:17:17: watchers[0].properties.duration: duration 10 has no unit (use e.g. 10s)",
        ],
        id="schedule-empty",
    ),
    pytest.param(
        machine_yaml("schedule", "schedules: ['@daily']", "duration: 10m", "start_splay: 1h"),
        ["m.yaml:18:20: watchers[0].properties.start_splay: must be shorter than duration"],
        id="schedule-splay-too-long",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_PROPERTIES)
def test_bad_properties(text: str, expected: list[str]) -> None:
    assert messages(text) == expected


async def test_schedule_reentered_reports_again_unless_skip_trigger_on_reenter() -> None:
    for skip, expected in ((False, 2), (True, 1)):
        watcher, clock = schedule_watcher("*/10 * * * *", minutes=5)  # open 22:10-22:15
        watcher.spec = replace(
            watcher.spec, properties=replace(watcher.props, skip_trigger_on_reenter=skip)
        )
        watcher.activate()
        await settle()
        watcher.deactivate()  # the machine left the watcher's states, and comes back
        await clock.advance(60)
        watcher.activate()
        await settle()
        outcomes = [r.outcome for r in watcher.machine.results]
        assert outcomes == [Outcome.SUCCESS] * expected
        await clock.advance(4 * 60)  # 22:15: the window closes; the next one fires again
        await clock.advance(5 * 60)
        outcomes = [r.outcome for r in watcher.machine.results]
        assert outcomes[-2:] == [Outcome.FAILURE, Outcome.SUCCESS]
        await watcher.close()


def test_schedule_duration_defaults_to_a_minute() -> None:
    spec = parse(machine_yaml("schedule", "schedules: ['0 * * * *']"))
    props = spec.watchers[0].properties
    assert isinstance(props, ScheduleProperties)
    assert props.windows.duration == timedelta(minutes=1)
    assert props.skip_trigger_on_reenter is False
