"""health: a probe (Nagios plugin, HTTP or TCP) with Kubernetes-style thresholds.

Each check runs the probe once and gets a Nagios status. OK counts as a success; CRITICAL
and UNKNOWN count as failures; WARNING counts as a failure with ``warning_is_failure`` and
otherwise as neither: it fires nothing and breaks both streaks. A success fires
``success_transition`` once ``success_threshold`` successes in a row have been seen (and on
every further success), a failure fires ``fail_transition`` once ``failure_threshold``
failures in a row have been seen; below a threshold the result is "unchanged". The streaks
start again whenever the watcher becomes active, so results from before the machine moved
do not count.

The payload carries the status, the status line, long output, the parsed perfdata (the
contract metrics read: ``perfdata: [{label, value, uom, warn, crit, min, max}]``), the
perfdata that could not be parsed, the streaks, and the last few results.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any, Self
from urllib.parse import urlsplit

from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.exec import command_environment
from steward.watchers.probes import (
    CommandProbe,
    HttpProbe,
    ProbeReport,
    Status,
    StatusRange,
    TcpProbe,
)

TYPE = "health"
HISTORY = 10  # results kept in the payload
DEFAULT_TIMEOUT = 10.0
PROBES = ("command", "http", "tcp")
_METHOD_RE = re.compile(r"^[A-Z]+$")
_STATUS_RANGE_RE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")

Probe = CommandProbe | HttpProbe | TcpProbe


@dataclass(frozen=True)
class HealthProperties:
    probe: Probe
    failure_threshold: int = 1
    success_threshold: int = 1
    warning_is_failure: bool = False

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        given = [key for key in PROBES if fields.has(key)]
        if not given:
            fields.problems.add(fields.pos, "properties need one of 'command', 'http' or 'tcp'")
        for extra in given[1:]:
            fields.error(extra, f"'{given[0]}' is already set: use only one of command, http, tcp")
        command = fields.command_line("command") if fields.has("command") else None
        fields.raw("command")  # known even when absent, for the unknown-field hint
        timeout = fields.duration("timeout", minimum=0.001, minimum_text="1ms")
        if timeout is not None and "command" not in given:
            fields.error("timeout", "applies to 'command' only; set http.timeout or tcp.timeout")
        http = _http(fields)
        tcp = _tcp(fields)
        probe: Probe = TcpProbe("", 0)
        if given and given[0] == "command" and command is not None:
            probe = CommandProbe(command[0], command[1], timeout or DEFAULT_TIMEOUT)
        elif given and given[0] == "http" and http is not None:
            probe = http
        elif given and given[0] == "tcp" and tcp is not None:
            probe = tcp
        props = cls(
            probe=probe,
            failure_threshold=fields.integer("failure_threshold", 1, minimum=1),
            success_threshold=fields.integer("success_threshold", 1, minimum=1),
            warning_is_failure=fields.boolean("warning_is_failure", False),
        )
        fields.finish(" in health properties")
        return props


def _http(fields: Fields) -> HttpProbe | None:
    f = fields.mapping("http")
    if f is None:
        return None
    url = f.string("url", required=True)
    if url is not None:
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed IPv6 bracket: http://[::1
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            f.error("url", f"must be an http:// or https:// URL with a host, got {url!r}")
            url = None
    method = (f.string("method") or "GET").upper()
    if not _METHOD_RE.match(method):
        f.error("method", f"not an HTTP method: {method!r}")
    headers = list(f.string_map("headers").items())
    expect = _expect_status(f)
    body_regex = f.string("body_regex")
    if body_regex is not None:
        try:
            re.compile(body_regex)
        except re.error as exc:
            f.error("body_regex", f"invalid regular expression: {exc}")
            body_regex = None
    timeout = f.duration("timeout", minimum=0.001, minimum_text="1ms")
    f.finish(" in http")
    if url is None:
        return None
    return HttpProbe(url, method, tuple(headers), expect, body_regex, timeout or DEFAULT_TIMEOUT)


def _expect_status(f: Fields) -> tuple[StatusRange, ...]:
    raw = f.raw("expect_status")
    if raw is None:
        if f.has("expect_status"):
            f.error("expect_status", "must be a status code, a range or a list of them, not null")
        return (StatusRange(200, 399),)
    items = raw if isinstance(raw, list) else [raw]
    ranges: list[StatusRange] = []
    for item in items:
        rng = _status_range(item)
        if rng is None:
            f.error(
                "expect_status",
                f"{item!r} is not an HTTP status code (100-599) or a range such as '200-299'",
            )
        else:
            ranges.append(rng)
    if isinstance(raw, list) and not raw:
        f.error("expect_status", "must list at least one status code or range")
    return tuple(ranges) or (StatusRange(200, 399),)


def _status_range(item: object) -> StatusRange | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        low = high = item
    elif isinstance(item, str) and (m := _STATUS_RANGE_RE.match(item)):
        low = int(m.group(1))
        high = int(m.group(2) or m.group(1))
    else:
        return None
    if not (100 <= low <= high <= 599):
        return None
    return StatusRange(low, high)


def _tcp(fields: Fields) -> TcpProbe | None:
    f = fields.mapping("tcp")
    if f is None:
        return None
    address = f.string("address", required=True)
    timeout = f.duration("timeout", minimum=0.001, minimum_text="1ms")
    f.finish(" in tcp")
    if address is None:
        return None
    host, sep, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    # isdigit alone lets '²' or a 5000-digit port through to int(), which raises
    port_ok = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
    if not sep or not host or not port_ok or not 1 <= int(port_text) <= 65535:
        f.error("address", f"must be host:port with a port 1-65535, got {address!r}")
        return None
    return TcpProbe(host, int(port_text), timeout or DEFAULT_TIMEOUT)


class Verdict(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEITHER = "neither"


def verdict(status: Status, warning_is_failure: bool) -> Verdict:
    if status is Status.OK:
        return Verdict.SUCCESS
    if status is Status.WARNING and not warning_is_failure:
        return Verdict.NEITHER
    return Verdict.FAILURE


@dataclass
class Streak:
    """Consecutive successes and failures, against their thresholds."""

    success_threshold: int = 1
    failure_threshold: int = 1
    successes: int = 0
    failures: int = 0

    def record(self, v: Verdict) -> Outcome:
        """Count one verdict; the outcome to report (unchanged below the threshold)."""
        if v is Verdict.SUCCESS:
            self.successes, self.failures = self.successes + 1, 0
            return (
                Outcome.SUCCESS if self.successes >= self.success_threshold else Outcome.UNCHANGED
            )
        if v is Verdict.FAILURE:
            self.successes, self.failures = 0, self.failures + 1
            return Outcome.FAILURE if self.failures >= self.failure_threshold else Outcome.UNCHANGED
        self.successes = self.failures = 0
        return Outcome.UNCHANGED

    def reset(self) -> None:
        self.successes = self.failures = 0


class ResultLog:
    """The last results of one watcher, for its payload (``steward status``, state events)."""

    def __init__(self, size: int = HISTORY) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=size)

    def payload(self, report: ProbeReport, at: float, runtime: float) -> dict[str, Any]:
        self._items.appendleft({"at": at, "status": report.status.value, "output": report.output})
        return {
            "status": report.status.value,
            "output": report.output,
            "long_output": report.long_output,
            "perfdata": [p.as_dict() for p in report.perfdata],
            "perfdata_errors": list(report.perfdata_errors),
            "checked_at": at,
            "runtime": runtime,
            "history": list(self._items),
        }


async def observe(probe: Probe, watcher: Watcher) -> ProbeReport:
    """One observation by ``probe``; a command runs as ``watcher``'s, for its machine."""
    if isinstance(probe, CommandProbe):
        machine = watcher.machine
        env = command_environment(machine, watcher.name)
        return await probe.observe(watcher.context.processes, machine.directory, env)
    return await probe.observe()


class HealthWatcher(Watcher):
    TYPE = TYPE
    Properties = HealthProperties

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        props = self.props
        self.streak = Streak(props.success_threshold, props.failure_threshold)
        self.results = ResultLog()

    @property
    def props(self) -> HealthProperties:
        p = self.spec.properties
        assert isinstance(p, HealthProperties)
        return p

    def activate(self) -> None:
        """Streaks count only results seen since the watcher last became active."""
        self.streak.reset()
        super().activate()

    async def check(self) -> WatcherResult:
        started = self.clock.monotonic()
        report = await observe(self.props.probe, self)
        outcome = self.streak.record(verdict(report.status, self.props.warning_is_failure))
        payload = self.results.payload(report, self.clock.time(), self.clock.monotonic() - started)
        payload["consecutive_successes"] = self.streak.successes
        payload["consecutive_failures"] = self.streak.failures
        detail = f"{report.status.value}: {report.output}"
        if outcome is Outcome.UNCHANGED and report.status is not Status.WARNING:
            count, threshold = (
                (self.streak.successes, self.streak.success_threshold)
                if report.status is Status.OK
                else (self.streak.failures, self.streak.failure_threshold)
            )
            detail += f" ({count} of {threshold} in a row)"
        return WatcherResult(outcome, detail, payload=payload)
