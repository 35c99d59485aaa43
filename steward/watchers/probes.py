"""The three health probes: a Nagios plugin command, an HTTP request, a TCP connect.

Each probe observes once and reports a Nagios status with its text and perfdata; none of
them blocks the event loop (the command runs through the machine's ``MachineProcesses``,
HTTP through the aiohttp client, TCP through ``asyncio.open_connection``). A probe never
raises for what it observes: a refused connection or a timeout is a CRITICAL report.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from steward.processes import DEFAULT_PATH, first_line, resolve_program
from steward.watchers.plugin_output import Perfdata, parse_plugin_output

if TYPE_CHECKING:
    from steward.processes import MachineProcesses

BODY_CAP = 1024 * 1024  # bytes of an HTTP body read for body_regex
LONG_OUTPUT_CAP = 4096  # characters of long output kept


class Status(StrEnum):
    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def from_exit_code(cls, code: int | None) -> Status:
        """Nagios plugin protocol: 0 OK, 1 WARNING, 2 CRITICAL, anything else UNKNOWN."""
        return {0: cls.OK, 1: cls.WARNING, 2: cls.CRITICAL}.get(code, cls.UNKNOWN)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProbeReport:
    status: Status
    output: str  # the status line
    long_output: str = ""
    perfdata: tuple[Perfdata, ...] = ()
    perfdata_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandProbe:
    """A Nagios plugin: exit code is the status, stdout the text and perfdata."""

    command: str
    argv: tuple[str, ...]
    timeout: float = 10.0

    async def observe(
        self, processes: MachineProcesses, directory: Path, env: dict[str, str]
    ) -> ProbeReport:
        program = resolve_program(self.argv[0], directory, env.get("PATH", DEFAULT_PATH))
        if program is None:
            return ProbeReport(Status.UNKNOWN, f"UNKNOWN - command not found: {self.argv[0]}")
        run = await processes.run((program, *self.argv[1:]), directory, env, self.timeout)
        if run.error:
            return ProbeReport(Status.UNKNOWN, f"UNKNOWN - {run.error}")
        if run.timed_out:
            return ProbeReport(
                Status.UNKNOWN, f"UNKNOWN - plugin timed out after {self.timeout:g}s"
            )
        parsed = parse_plugin_output(run.stdout)
        text = parsed.text or first_line(run.stderr) or f"(no output, exit code {run.exit_code})"
        return ProbeReport(
            Status.from_exit_code(run.exit_code),
            text,
            parsed.long_output[:LONG_OUTPUT_CAP],
            parsed.perfdata,
            parsed.errors,
        )


@dataclass(frozen=True)
class StatusRange:
    low: int
    high: int

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.low <= code <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class HttpProbe:
    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    expect_status: tuple[StatusRange, ...] = (StatusRange(200, 399),)
    body_regex: str | None = None
    timeout: float = 10.0

    async def observe(self) -> ProbeReport:
        import aiohttp  # ~80 ms of imports: only when a machine probes HTTP, not to validate one

        started = time.monotonic()
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as s,
                s.request(
                    self.method, self.url, headers=dict(self.headers), allow_redirects=False
                ) as response,
            ):
                body = await response.content.read(BODY_CAP)
                code, reason, version = response.status, response.reason, response.version
        except TimeoutError:
            return ProbeReport(
                Status.CRITICAL, f"HTTP CRITICAL - no response within {self.timeout:g}s"
            )
        except aiohttp.ClientError as exc:
            return ProbeReport(Status.CRITICAL, f"HTTP CRITICAL - {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        perfdata = (
            Perfdata("time", round(elapsed, 6), "s", min=0.0, max=self.timeout),
            Perfdata("size", float(len(body)), "B", min=0.0),
        )
        proto = f"HTTP/{version.major}.{version.minor}" if version is not None else "HTTP"
        http = f"{proto} {code} {reason or ''}".rstrip()
        summary = f"{http} - {len(body)} bytes in {elapsed:.3f} second response time"
        if not any(code in r for r in self.expect_status):
            expected = ", ".join(str(r) for r in self.expect_status)
            text = f"HTTP CRITICAL: {summary} (expected status {expected})"
            return ProbeReport(Status.CRITICAL, text, perfdata=perfdata)
        if self.body_regex is not None and not re.search(
            self.body_regex, body.decode("utf-8", "replace")
        ):
            text = f"HTTP CRITICAL: {summary} (body does not match {self.body_regex!r})"
            return ProbeReport(Status.CRITICAL, text, perfdata=perfdata)
        return ProbeReport(Status.OK, f"HTTP OK: {summary}", perfdata=perfdata)


@dataclass(frozen=True)
class TcpProbe:
    host: str
    port: int
    timeout: float = 10.0

    async def observe(self) -> ProbeReport:
        import asyncio  # here: validate loads this module without an event loop

        started = time.monotonic()
        where = f"{self.host} port {self.port}"
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            return ProbeReport(
                Status.CRITICAL, f"TCP CRITICAL - no connection within {self.timeout:g}s to {where}"
            )
        except OSError as exc:
            return ProbeReport(
                Status.CRITICAL, f"TCP CRITICAL - {_reason(exc)} connecting to {where}"
            )
        elapsed = time.monotonic() - started
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return ProbeReport(
            Status.OK,
            f"TCP OK - {elapsed:.3f} second response time on {where}",
            perfdata=(Perfdata("time", round(elapsed, 6), "s", min=0.0, max=self.timeout),),
        )


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)
