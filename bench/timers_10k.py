#!/usr/bin/env python3
"""10,000 timer machines: load time, memory and the idle daemon's CPU.

Each machine (``write_machines(..., timers_only=True)`` in benchlib) has two states, each
left by a timer watcher of ``--timer`` (60 s): one transition per machine per period, no
process spawned, so what is measured is the daemon itself. There is no other tool to compare
with: each figure's ratio is against its target.

- **load**: from spawning ``steward run`` until ``GET /v1/status`` lists every machine in one
  of its states (target ≤ 4 s, issue 19). The status is asked once the daemon has logged
  ``steward started`` (asking earlier would slow the load down). Phases, from the daemon's JSON log
  (millisecond timestamps, wall clock): boot (spawn -> ``metrics on``, logged just before the
  machines directory is read: interpreter, imports, store, control socket), discover and
  parse (-> the first ``machine … started``: every file read, parsed and validated before any
  starts), start (-> the last ``machine … started``), and the first status call.
- **memory**: the kernel's peak RSS of the daemon (VmHWM; target ≤ 180 MB, decimal, issue 19).
- **idle CPU**: the daemon's CPU (utime + stime, % of one core) over ``--idle`` (30 s) right
  after load (target ≤ 5 %). The transitions the timers made in that window are counted (with
  60 s timers and a start phase under 30 s, none fire in it), and so are the daemon's full
  rescans of the machines directory started in it: one starts right after startup (so it is
  counted before the window, but runs on into it) and then one every 60 s
  (``reload.rescan_interval``), each reading, hashing and permission-checking every file: at
  10,000 files that is most of what the idle daemon does.
- **steady** (information, ``--no-steady`` to skip): CPU and transitions over one timer
  period after that, in which every machine's timer fires once.
- **status**: ``GET /v1/status`` on the control socket (time to the response headers, i.e.
  the daemon building the body, then the transfer and the client's JSON parse, and the body's
  size), and the CLI an operator types: ``steward status`` and ``steward status --json``
  (a new interpreter each).

    .venv/bin/python bench/timers_10k.py --quick --no-record   # smoke: 500 machines, 2 s timers
    .venv/bin/python bench/timers_10k.py                       # 10,000 machines, recorded

Prints ``timers-10k-load: …``, ``timers-10k-rss: …`` and ``timers-10k-idle-cpu: …`` lines
(``… target: … ratio: … PASS|MISS``); exits 0 either way (1 only if the benchmark itself could
not run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    CLK_TCK,
    BenchError,
    Daemon,
    ProcSample,
    UnixHTTPConnection,
    add_output_args,
    cpu_percent,
    duration_arg,
    keep_or_remove,
    loadavg,
    positive_int,
    proc_sample,
    read_log,
    report_figures,
    results_section,
    run_main,
    short_state_dir,
    summary_line,
    write_machines,
)

TARGET_LOAD = 4.0  # seconds (issue 19; was 10 s)
TARGET_RSS = 180e6  # bytes (180 MB; issue 19, was 500 MB)
TARGET_IDLE_CPU = 5.0  # % of one core
STATES = {"idle", "busy"}  # TIMER_MACHINE_TEMPLATE's
STATUS_TIMEOUT = 300.0  # seconds one status call may take
STARTED = re.compile(r"^machine \S+ (started|resumed) in state ")


# arguments -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Start the daemon on N timer-only machines: load time, RSS, idle CPU, "
        "status call time."
    )
    parser.add_argument("--machines", type=positive_int, default=None, help="(10000)")
    parser.add_argument("--timer", type=duration_arg, default=None, help="each state's timer (60s)")
    parser.add_argument(
        "--idle", type=duration_arg, default=None, help="idle CPU window after load (30s)"
    )
    parser.add_argument(
        "--no-steady", action="store_true", help="skip the steady window (one timer period)"
    )
    parser.add_argument(
        "--status-calls", type=positive_int, default=None, help="status calls of each kind (5)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=duration_arg,
        default=600.0,
        help="give up if the machines are not all running after this long (600s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 500 machines, 2 s timers, 3 s idle window, 2 status calls",
    )
    add_output_args(parser, "keep the machines and state dirs (and the log)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.machines = args.machines or (500 if quick else 10_000)
    args.timer = args.timer or (2.0 if quick else 60.0)
    args.idle = args.idle or (3.0 if quick else 30.0)
    args.status_calls = args.status_calls or (2 if quick else 5)
    return args


# figures ---------------------------------------------------------------------------------------
def _mb(kib: int) -> str:
    return f"{kib * 1024 / 1e6:.1f} MB ({kib / 1024:.1f} MiB)"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Window:
    seconds: float = 0.0
    cpu_pct: float = 0.0
    transitions: int = 0
    rescans: int = 0  # full rescans of the machines directory (one every 60 s by default)

    def text(self) -> str:
        return (
            f"{self.cpu_pct:.2f} % of one core over {self.seconds:.1f} s, "
            f"{self.transitions} transitions ({self.transitions / self.seconds:.1f}/s), "
            f"{self.rescans} full rescans started"
            if self.seconds
            else "-"
        )


@dataclass
class Figures:
    machines: int
    timer: float
    loadavg: str = "?"
    ready: float = 0.0  # spawn -> status lists all
    boot: float | None = None  # spawn -> metrics listening (just before the directory is read)
    parse: float | None = None  # -> the first machine started
    start: float | None = None  # first -> last machine started
    started_to_ready: float | None = None  # "steward started" logged -> the status answered
    load_seconds: float | None = None  # the daemon's own, logged with "steward started"
    load_cpu: float = 0.0  # CPU seconds the daemon used from spawn to ready
    rss_ready_kib: int = 0
    rss_end_kib: int = 0
    hwm_kib: int = 0
    threads: int = 0
    idle: Window = field(default_factory=Window)
    steady: Window = field(default_factory=Window)
    status_server: list[float] = field(default_factory=list)  # request -> response headers
    status_transfer: list[float] = field(default_factory=list)  # headers -> body read
    status_parse: list[float] = field(default_factory=list)  # the client's json.loads
    status_bytes: int = 0
    cli_text: list[float] = field(default_factory=list)  # `steward status`
    cli_json: list[float] = field(default_factory=list)  # `steward status --json`
    stop_seconds: float = 0.0
    exit_code: int | None = None
    log_levels: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[tuple[str, str]]:
        def sec(value: float | None) -> str:
            return "not logged" if value is None else f"{value:.2f} s"

        api = (
            f"{_median(self.status_server):.3f} s building + "
            f"{_median(self.status_transfer):.3f} s transfer + "
            f"{_median(self.status_parse):.3f} s client parse, "
            f"{self.status_bytes / 1e6:.1f} MB body"
        )
        return [
            ("machines", f"{self.machines}, timer {self.timer:g} s in each of two states"),
            (f"load: spawn -> status lists all (target ≤ {TARGET_LOAD:g} s)", sec(self.ready)),
            ("  boot: spawn -> metrics listening", sec(self.boot)),
            ("  discover + parse: -> first machine started", sec(self.parse)),
            ("  start: first -> last machine started", sec(self.start)),
            ("  'steward started' logged -> status answered", sec(self.started_to_ready)),
            ("  daemon load_seconds (log)", sec(self.load_seconds)),
            ("load CPU (daemon, spawn -> ready)", f"{self.load_cpu:.1f} s"),
            (f"RSS peak: VmHWM (target ≤ {TARGET_RSS / 1e6:g} MB)", _mb(self.hwm_kib)),
            ("RSS after load / at the end", f"{_mb(self.rss_ready_kib)} / {_mb(self.rss_end_kib)}"),
            ("threads", str(self.threads)),
            (f"idle CPU after load (target ≤ {TARGET_IDLE_CPU:g} %)", self.idle.text()),
            ("steady CPU over one timer period", self.steady.text()),
            (f"GET /v1/status median of {len(self.status_server)}", api),
            ("`steward status` (CLI, text) median", f"{_median(self.cli_text):.2f} s"),
            ("`steward status --json` (CLI) median", f"{_median(self.cli_json):.2f} s"),
            ("stop (SIGTERM -> exit)", f"{self.stop_seconds:.2f} s, exit {self.exit_code}"),
            (
                "log lines by level",
                ", ".join(f"{k} {v}" for k, v in sorted(self.log_levels.items())),
            ),
        ]

    def summaries(self) -> list[str]:
        rss = self.hwm_kib * 1024
        return [
            summary_line(
                "timers-10k-load",
                f"spawn -> status lists all {self.machines} machines {self.ready:.2f} s",
                f"≤ {TARGET_LOAD:g} s",
                f"{self.ready / TARGET_LOAD:.2f}",
                self.ready <= TARGET_LOAD,
            ),
            summary_line(
                "timers-10k-rss",
                f"peak RSS {rss / 1e6:.1f} MB ({self.machines} machines)",
                f"≤ {TARGET_RSS / 1e6:g} MB",
                f"{rss / TARGET_RSS:.2f}",
                rss <= TARGET_RSS,
            ),
            summary_line(
                "timers-10k-idle-cpu",
                f"{self.idle.cpu_pct:.2f} % of one core over {self.idle.seconds:.0f} s after load "
                f"({self.idle.transitions} transitions, {self.idle.rescans} rescans started)",
                f"≤ {TARGET_IDLE_CPU:g} %",
                f"{self.idle.cpu_pct / TARGET_IDLE_CPU:.2f}",
                self.idle.cpu_pct <= TARGET_IDLE_CPU,
            ),
        ]


# the daemon ------------------------------------------------------------------------------------
@dataclass
class Status:
    running: int  # machines in one of STATES
    listed: int
    transitions: int  # sum of transitions_fired
    rescans: int  # full rescans of the machines directory so far
    server: float  # request -> headers
    transfer: float  # headers -> body read
    parse: float  # json.loads
    size: int


def get_status(socket_path: Path) -> Status | None:
    """``GET /v1/status``, timed in parts; None while the daemon does not answer."""
    conn = UnixHTTPConnection(socket_path, STATUS_TIMEOUT)
    try:
        t0 = time.perf_counter()
        conn.request("GET", "/v1/status")
        response = conn.getresponse()
        t1 = time.perf_counter()
        body = response.read()
        t2 = time.perf_counter()
        if response.status != 200:
            return None
        data = json.loads(body)
        t3 = time.perf_counter()
    except (OSError, ValueError):
        return None
    finally:
        conn.close()
    machines = data.get("machines") or []
    return Status(
        running=sum(1 for m in machines if m.get("state") in STATES),
        listed=len(machines),
        transitions=sum(int(m.get("transitions_fired") or 0) for m in machines),
        rescans=int((data.get("reload") or {}).get("rescans") or 0),
        server=t1 - t0,
        transfer=t2 - t1,
        parse=t3 - t2,
        size=len(body),
    )


class LogWatch:
    """Reads the daemon's log as it grows, looking for one message; cheap while it loads."""

    def __init__(self, path: Path, needle: bytes) -> None:
        self.path = path
        self.needle = needle
        self.offset = 0
        self.tail = b""

    def seen(self) -> bool:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return False
        self.offset += len(chunk)
        text = self.tail + chunk
        self.tail = text[-len(self.needle) :]
        return self.needle in text


def log_time(record: dict[str, Any]) -> float | None:
    """A log record's ``ts`` (``2026-11-21T13:09:01.123Z``) as a Unix time."""
    try:
        when = dt.datetime.strptime(str(record["ts"]), "%Y-%m-%dT%H:%M:%S.%fZ")
    except (KeyError, ValueError):
        return None
    return when.replace(tzinfo=dt.UTC).timestamp()


def phases(figures: Figures, records: list[dict[str, Any]], spawned_wall: float) -> None:
    """Boot, parse and start from the log's timestamps; the log lines by level."""
    metrics = first = last = started = None
    for r in records:
        level = str(r.get("level", "?"))
        figures.log_levels[level] = figures.log_levels.get(level, 0) + 1
        msg = str(r.get("msg", ""))
        at = log_time(r)
        if at is None:
            continue
        if metrics is None and msg.startswith("metrics on"):
            metrics = at
        elif STARTED.match(msg):
            first = at if first is None else first
            last = at
        elif started is None and msg.startswith("steward started"):
            started = at
            load = r.get("load_seconds")
            figures.load_seconds = float(load) if isinstance(load, int | float) else None
    if metrics is not None:
        figures.boot = metrics - spawned_wall
        if first is not None:
            figures.parse = first - metrics
    if first is not None and last is not None:
        figures.start = last - first
    if started is not None:
        figures.started_to_ready = spawned_wall + figures.ready - started


def window(daemon: Daemon, seconds: float, before: Status) -> tuple[Window, Status]:
    """The daemon's CPU over ``seconds`` and the transitions made in them (status after)."""
    first = proc_sample(daemon.pid)
    if first is None:
        raise daemon.failed("the daemon vanished")
    time.sleep(seconds)
    last = proc_sample(daemon.pid)
    if last is None:
        raise daemon.failed("the daemon exited in the window")
    after = get_status(daemon.state_dir / "steward.sock")
    if after is None:
        raise daemon.failed("status did not answer after the window")
    span = last.at - first.at
    cpu = cpu_percent(last.self_ticks - first.self_ticks, span)
    made = after.transitions - before.transitions
    return Window(span, cpu, made, after.rescans - before.rescans), after


def time_cli(state_dir: Path, *extra: str) -> float:
    argv = [sys.executable, "-m", "steward", "status", "--state-dir", str(state_dir), *extra]
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, timeout=STATUS_TIMEOUT)
    if out.returncode != 0:
        raise BenchError(f"`steward status {' '.join(extra)}` failed: {out.stderr[-500:]!r}")
    return time.perf_counter() - t0


def wait_ready(
    daemon: Daemon, count: int, spawned: float, timeout: float, sample: Callable[[], None]
) -> Status:
    """Wait for ``steward started`` in the log, then until status lists ``count`` machines
    running; sets nothing, returns that status. ``sample`` is called on every turn."""
    watch = LogWatch(daemon.log_path, b'"msg": "steward started')
    deadline = spawned + timeout
    while time.monotonic() < deadline:
        if not daemon.alive():
            raise daemon.failed("the daemon exited before all machines were running")
        sample()
        if watch.seen():
            break
        time.sleep(0.05)
    else:
        raise daemon.failed(f"'steward started' was not logged within {timeout:.0f} s")
    while time.monotonic() < deadline:
        status = get_status(daemon.state_dir / "steward.sock")
        sample()
        if status is not None and status.running >= count:
            return status
        time.sleep(0.05)
    raise daemon.failed(f"status did not list {count} machines running within {timeout:.0f} s")


def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.machines, args.timer, loadavg=loadavg())
    machines_dir = Path(tempfile.mkdtemp(prefix="steward-timers-machines-"))
    state_dir = short_state_dir("st-")
    # metrics on any free port: realistic (metrics are on by default), and "metrics on …" is
    # the log line that marks the end of the boot phase
    daemon = Daemon(
        machines_dir,
        state_dir,
        state_dir / "daemon.log",
        extra_args=("--metrics-listen", "127.0.0.1:0"),
        stop_timeout=120.0,
    )
    samples: list[ProcSample] = []

    def sample() -> None:
        s = proc_sample(daemon.pid)
        if s is not None:
            samples.append(s)

    try:
        print(f"writing {args.machines} timer machines into {machines_dir}", flush=True)
        write_machines(machines_dir, args.machines, args.timer, timers_only=True)
        spawned_wall = time.time()
        spawned = daemon.start()
        ready_status = wait_ready(daemon, args.machines, spawned, args.ready_timeout, sample)
        figures.ready = time.monotonic() - spawned
        print(f"ready after {figures.ready:.2f} s", flush=True)
        at_ready = samples[-1]
        figures.load_cpu = at_ready.self_ticks / CLK_TCK
        figures.rss_ready_kib = at_ready.rss_kib

        print(f"idle window: {args.idle:g} s", flush=True)
        figures.idle, status = window(daemon, args.idle, ready_status)

        print(f"status calls: {args.status_calls} of each kind", flush=True)
        for _ in range(args.status_calls):
            s = get_status(state_dir / "steward.sock")
            if s is None:
                raise daemon.failed("status did not answer")
            figures.status_server.append(s.server)
            figures.status_transfer.append(s.transfer)
            figures.status_parse.append(s.parse)
            figures.status_bytes = s.size
            figures.cli_text.append(time_cli(state_dir))
            figures.cli_json.append(time_cli(state_dir, "--json"))
            status = s

        if not args.no_steady:
            print(f"steady window: one timer period, {args.timer:g} s", flush=True)
            figures.steady, status = window(daemon, args.timer, status)

        end = proc_sample(daemon.pid)
        if end is None:
            raise daemon.failed("the daemon vanished")
        figures.rss_end_kib = end.rss_kib
        figures.hwm_kib = end.hwm_kib
        figures.threads = max(s.threads for s in [*samples, end])
        figures.stop_seconds, figures.exit_code = daemon.stop()
        phases(figures, read_log(daemon.log_path), spawned_wall)
        return figures
    finally:
        daemon.close()
        kept = f"machines {machines_dir}, state and log {state_dir}"
        keep_or_remove(args.keep, kept, machines_dir, state_dir)


def section(figures: Figures) -> str:
    return results_section(
        f"timers_10k: {figures.machines} timer machines, {figures.timer:g} s timers",
        figures.lines(),
        f"N = {figures.machines} machines, each two states left by a {figures.timer:g} s timer "
        "(no exec); load = spawn -> `GET /v1/status` lists all running; phases from the "
        "daemon's log; idle CPU over the window right after load",
        commit_note=f"; load average at start: {figures.loadavg}",
        footer="\n".join(f"`{line}`" for line in figures.summaries()),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(figures: Figures) -> None:
        report_figures(
            figures.lines(),
            lambda: section(figures),
            figures.summaries(),
            no_record=args.no_record,
        )

    return run_main("timers_10k", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
