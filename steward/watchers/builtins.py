"""Choria's built-in nagios checks: ``heartbeat``, ``goss`` and ``choria_status``.

- ``heartbeat``: always OK; the output is the time (Unix seconds), as in Choria.
- ``goss``: validates ``gossfile`` with the ``goss`` binary (Choria links goss in; steward
  runs it when it is installed: ``goss --gossfile F validate --format json``). Failed tests →
  CRITICAL; goss missing or its output unreadable → UNKNOWN with the reason.
- ``choria_status``: Choria reads its own status file; steward checks its own health the same
  way: the daemon runs (it is answering), and when NATS is configured the connection is up
  and the last successful exchange with it (an acknowledged publish, or this check's own
  round trip) is no older than ``last_message``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from steward.errors import NatsUnavailable
from steward.processes import DEFAULT_PATH, MachineProcesses, first_line, resolve_program
from steward.watchers.base import MachineHandle
from steward.watchers.context import WatcherContext
from steward.watchers.plugin_output import parse_plugin_output
from steward.watchers.probes import ProbeReport, Status

BUILTINS = ("heartbeat", "goss", "choria_status")


async def heartbeat(context: WatcherContext) -> ProbeReport:
    return ProbeReport(Status.OK, str(int(context.clock.time())))


async def goss(
    processes: MachineProcesses,
    machine: MachineHandle,
    env: dict[str, str],
    gossfile: str,
    time_limit: float,
) -> ProbeReport:
    program = resolve_program("goss", machine.directory, env.get("PATH", DEFAULT_PATH))
    if program is None:
        return ProbeReport(Status.UNKNOWN, "UNKNOWN: goss is not installed (not on PATH)")
    path = Path(gossfile)
    if not path.is_absolute():
        path = machine.directory / path
    argv = (program, "--gossfile", str(path), "validate", "--format", "json", "--no-color")
    run = await processes.run(argv, machine.directory, env, time_limit)
    if run.error or run.timed_out:
        why = run.error or f"timed out after {time_limit:g}s"
        return ProbeReport(Status.UNKNOWN, f"UNKNOWN: goss validate failed: {why}")
    try:
        summary = json.loads(run.stdout)["summary"]
        tests, failed = int(summary["test-count"]), int(summary["failed-count"])
        line = str(summary.get("summary-line", f"Count: {tests}, Failed: {failed}"))
        seconds = float(summary.get("total-duration", 0)) / 1e9
    except (ValueError, KeyError, TypeError):
        reason = first_line(run.stderr or run.stdout) or f"exit code {run.exit_code}"
        return ProbeReport(Status.UNKNOWN, f"UNKNOWN: goss output invalid: {reason}")
    status = Status.CRITICAL if failed else Status.OK
    parsed = parse_plugin_output(
        f"{status.value}: {line}|checks={tests};; failed={failed};; runtime={seconds:f}s"
    )
    return ProbeReport(status, parsed.text, perfdata=parsed.perfdata)


async def choria_status(
    context: WatcherContext, last_message: float, time_limit: float
) -> ProbeReport:
    nats = context.nats
    if not nats.configured:
        return ProbeReport(Status.OK, "OK: steward is running; no NATS is configured")
    if not nats.connected:
        return ProbeReport(Status.CRITICAL, "CRITICAL: Not connected to any server")
    from nats.errors import Error as NatsError  # loaded with the daemon's connection anyway

    try:
        client = await nats.client()
        started = time.monotonic()
        await client.flush(timeout=max(1, int(time_limit)))
        rtt = time.monotonic() - started
        nats.succeeded(context.clock.time())
    except (NatsUnavailable, NatsError, TimeoutError, OSError) as exc:
        rtt = None
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = ""
    last = nats.state.last_success
    age = context.clock.time() - last if last is not None else None
    perf = f"last_msg={int(last or 0)};; rtt={rtt or 0:f}s;;"
    if age is None or age > last_message:
        seen = "never" if age is None else f"{age:.0f}s ago"
        detail = f" ({error})" if error else ""
        text = f"CRITICAL: last successful exchange with NATS {seen}, over {last_message:g}s"
        return _report(Status.CRITICAL, f"{text}{detail}|{perf}")
    server = nats.state.server or "?"
    return _report(Status.OK, f"OK: connected to {server}|{perf}")


def _report(status: Status, output: str) -> ProbeReport:
    parsed = parse_plugin_output(output)
    return ProbeReport(status, parsed.text, perfdata=parsed.perfdata)
