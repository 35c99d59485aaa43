#!/usr/bin/env python3
"""Load benchmark: start the real daemon on N generated machines and measure what it costs.

Every machine has two states, ``idle`` and ``checking``. An exec watcher runs ``/bin/true``
every ``--interval`` in both states and fires ``check`` (idle -> checking); a timer of half
the interval fires ``done`` (checking -> idle). So each machine runs one process and makes
two committed transitions per interval, and every figure below is for machines that really
run, not machines that sit idle.

Figures: the time from spawning the daemon until ``steward status --json`` lists all N
machines (and the daemon's own ``load_seconds``), the daemon's RSS (peak and final) against
the RSS of a bare interpreter that imports the CLI, CPU (daemon and reaped children, % of
one core), exec runs done against the configured rate (and the effective interval between
runs of each watcher, exact whatever the phase of the window), and the time SIGTERM takes to
stop. The sampling window starts once every exec watcher has run once. The box's load
average is recorded: other processes on it skew every figure.

    .venv/bin/python bench/load_machines.py --quick --no-record   # smoke run
    .venv/bin/python bench/load_machines.py                       # 1000 machines, 30 s

Results are appended to ``bench/RESULTS.md`` unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    BenchError,
    Daemon,
    ProcSample,
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
    write_machines,
)

# what the daemon imports before it loads a machine: the CLI, the daemon and every watcher type
BASELINE_CODE = (
    "import steward.cmd.main, steward.daemon.server; "
    "from steward.watchers.registry import default_registry; default_registry(); "
    "import time; time.sleep(3)"
)
READY_TIMEOUT = 300.0  # seconds to wait for the daemon to list every machine
STATUS_TIMEOUT = 60.0  # seconds one `steward status` call may take
# the figures RESULTS.md's summary table shows for a run (this scenario has no target lines)
HEADLINE = (
    "ready (spawn -> status lists all)",
    "RSS peak (sampled)",
    "CPU per exec run",
    "exec runs vs expected",
)


# arguments -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Start the steward daemon on N generated machines and measure load time, "
        "memory, CPU, exec throughput and stop time.",
    )
    parser.add_argument(
        "--machines", type=positive_int, default=None, help="number of machines (default 1000)"
    )
    parser.add_argument(
        "--interval",
        type=duration_arg,
        default=5.0,
        help="exec watcher interval, e.g. 5s or 500ms (default 5s)",
    )
    parser.add_argument(
        "--duration",
        type=duration_arg,
        default=None,
        help="how long to sample once all machines run, e.g. 30s (default 30s)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 50 machines for 5 s (unless overridden)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=duration_arg,
        default=READY_TIMEOUT,
        help=f"give up if not all machines run after this long (default {READY_TIMEOUT:g}s)",
    )
    add_output_args(parser, "keep the machines and state dirs (and the log)")
    args = parser.parse_args(argv)
    if args.machines is None:
        args.machines = 50 if args.quick else 1000
    if args.duration is None:
        args.duration = 5.0 if args.quick else 30.0
    return args


# the baseline ----------------------------------------------------------------------------------
def measure_baseline() -> int:
    """Peak RSS (KiB) of a bare interpreter that imports the CLI and sleeps."""
    proc = subprocess.Popen([sys.executable, "-c", BASELINE_CODE])
    peak = 0
    try:
        while proc.poll() is None:
            sample = proc_sample(proc.pid)
            if sample is not None:
                peak = max(peak, sample.rss_kib)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if proc.returncode != 0:
        raise BenchError(f"baseline process failed (exit {proc.returncode}): {BASELINE_CODE}")
    return peak


# the daemon ------------------------------------------------------------------------------------
@dataclass
class Status:
    at: float  # monotonic, midway through the call
    machines: int
    exec_runs: int
    timer_runs: int
    transitions: int
    rejected: int
    store_errors: int
    states: dict[str, int] = field(default_factory=dict)
    # per exec watcher ("machine/watcher"): (runs, wall-clock start of its last run)
    exec_watchers: dict[str, tuple[int, float]] = field(default_factory=dict)


def effective_intervals(a: Status, b: Status) -> list[float]:
    """Per exec watcher, the mean time between its runs from snapshot ``a`` to ``b``.

    Exact whatever the phase of the window, unlike counting runs (machines without splay
    all run in the same instant, so a window holds 6 or 7 bursts depending on where it falls).
    """
    out: list[float] = []
    for key, (runs_b, at_b) in b.exec_watchers.items():
        runs_a, at_a = a.exec_watchers.get(key, (0, 0.0))
        if runs_a and runs_b > runs_a:
            out.append((at_b - at_a) / (runs_b - runs_a))
    return out


def query_status(state_dir: Path) -> Status | None:
    """``steward status --json`` through the CLI; None while the daemon does not answer."""
    started = time.monotonic()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "steward", "status", "--json", "--state-dir", str(state_dir)],
            capture_output=True,
            text=True,
            timeout=STATUS_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return None
    at = (started + time.monotonic()) / 2
    if out.returncode != 0:
        return None
    data = json.loads(out.stdout)
    status = Status(at, len(data["machines"]), 0, 0, 0, 0, 0)
    for m in data["machines"]:
        status.transitions += m.get("transitions_fired", 0)
        status.rejected += m.get("transitions_rejected", 0)
        status.store_errors += 1 if m.get("store_error") else 0
        status.states[m["state"]] = status.states.get(m["state"], 0) + 1
        for w in m["watchers"]:
            if w["type"] == "exec":
                status.exec_runs += w["runs"]
                if w.get("last_run_at") is not None:
                    # when the last run started: the loop schedules runs by their start
                    started = float(w["last_run_at"]) - float(w.get("last_duration") or 0.0)
                    status.exec_watchers[f"{m['name']}/{w['name']}"] = (w["runs"], started)
            elif w["type"] == "timer":
                status.timer_runs += w["runs"]
    return status


@dataclass
class Figures:
    machines: int
    interval: float
    duration: float
    baseline_kib: int = 0
    ready_seconds: float = 0.0
    load_seconds: float | None = None
    window_seconds: float = 0.0
    rss_peak_kib: int = 0
    rss_final_kib: int = 0
    hwm_kib: int = 0
    threads_peak: int = 0
    cpu_self_pct: float = 0.0
    cpu_children_pct: float = 0.0
    exec_runs: int = 0
    exec_expected: float = 0.0
    timer_runs: int = 0
    transitions: int = 0
    rejected: int = 0
    store_errors: int = 0
    stop_seconds: float = 0.0
    exit_code: int | None = None
    log_levels: dict[str, int] = field(default_factory=dict)
    # the most frequent warning/error messages (machine names stripped), with their counts
    problems: list[tuple[str, int]] = field(default_factory=list)
    loadavg: str = "?"  # the box's 1/5/15 min load average when the run started

    @property
    def cpu_total_pct(self) -> float:
        return self.cpu_self_pct + self.cpu_children_pct

    def per_machine_kib(self, rss_kib: int) -> float:
        return (rss_kib - self.baseline_kib) / self.machines

    interval_mean: float = 0.0  # effective time between runs of one exec watcher
    interval_max: float = 0.0

    @property
    def exec_ratio(self) -> float:
        return self.exec_runs / self.exec_expected if self.exec_expected else 0.0

    @property
    def cpu_ms_per_run(self) -> float:
        if not self.exec_runs:
            return 0.0
        return self.cpu_total_pct / 100 * self.window_seconds * 1000 / self.exec_runs

    def lines(self) -> list[tuple[str, str]]:
        mib = 1024
        load = f"{self.load_seconds:.2f} s" if self.load_seconds is not None else "not logged"
        return [
            ("ready (spawn -> status lists all)", f"{self.ready_seconds:.2f} s"),
            ("daemon load_seconds (log)", load),
            (
                "baseline RSS (python + the daemon's imports, every watcher type)",
                f"{self.baseline_kib / mib:.1f} MiB",
            ),
            (
                "RSS peak (sampled)",
                f"{self.rss_peak_kib / mib:.1f} MiB "
                f"({self.per_machine_kib(self.rss_peak_kib):.1f} KiB/machine over baseline)",
            ),
            (
                "RSS final",
                f"{self.rss_final_kib / mib:.1f} MiB "
                f"({self.per_machine_kib(self.rss_final_kib):.1f} KiB/machine over baseline)",
            ),
            ("VmHWM (kernel peak RSS)", f"{self.hwm_kib / mib:.1f} MiB"),
            ("threads peak", str(self.threads_peak)),
            (
                "CPU, % of one core (avg)",
                f"{self.cpu_total_pct:.1f} % (daemon {self.cpu_self_pct:.1f} %, "
                f"children {self.cpu_children_pct:.1f} %)",
            ),
            ("CPU per exec run", f"{self.cpu_ms_per_run:.2f} ms"),
            (
                "exec runs vs expected",
                f"{self.exec_runs} / {self.exec_expected:.0f} ({self.exec_ratio:.1%}) "
                f"in {self.window_seconds:.1f} s",
            ),
            (
                "effective exec interval (mean / max)",
                f"{self.interval_mean:.3f} s / {self.interval_max:.3f} s "
                f"(configured {self.interval:g} s)",
            ),
            (
                "transitions (fired / rejected)",
                f"{self.transitions} / {self.rejected}, store errors {self.store_errors}",
            ),
            ("stop (SIGTERM -> exit)", f"{self.stop_seconds:.2f} s, exit {self.exit_code}"),
            (
                "log lines by level",
                ", ".join(f"{k} {v}" for k, v in sorted(self.log_levels.items())),
            ),
            (
                "top warnings/errors",
                "; ".join(f"{n}x {msg!r}" for msg, n in self.problems) or "none",
            ),
        ]


def wait_ready(daemon: Daemon, count: int, spawned: float, timeout: float) -> tuple[float, Status]:
    """Poll status until it lists ``count`` machines; (seconds since spawn, that status)."""
    deadline = spawned + timeout
    seen: int | None = None
    while time.monotonic() < deadline:
        if not daemon.alive():
            raise daemon.failed("the daemon exited before all machines were running")
        status = query_status(daemon.state_dir)
        if status is not None:
            if status.machines >= count:
                return time.monotonic() - spawned, status
            seen = status.machines
        time.sleep(0.1)
    started = any(
        str(r.get("msg", "")).startswith("steward started") for r in read_log(daemon.log_path)
    )
    raise daemon.failed(
        f"status did not list {count} machines within {timeout:.0f} s (last answer: "
        f"{'none' if seen is None else seen} machines; 'steward started' "
        f"{'was' if started else 'was not'} logged)"
    )


def wait_first_runs(daemon: Daemon, status: Status, count: int, interval: float) -> Status:
    """Wait until every exec watcher has run once, so the window starts in steady state."""
    deadline = time.monotonic() + 2 * interval + 30
    while len(status.exec_watchers) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        if not daemon.alive():
            raise daemon.failed("the daemon exited while running")
        status = query_status(daemon.state_dir) or status
    return status


def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.machines, args.interval, args.duration, loadavg=loadavg())
    if float(figures.loadavg.split()[0].replace("?", "0")) > (os.cpu_count() or 1) / 2:
        print(f"warning: the box is busy (load average {figures.loadavg}); figures will be skewed")
    print(f"baseline: {sys.executable} -c {BASELINE_CODE!r}", flush=True)
    figures.baseline_kib = measure_baseline()

    machines_dir = Path(tempfile.mkdtemp(prefix="steward-bench-machines-"))
    state_dir = short_state_dir("sb-")
    log_path = state_dir / "daemon.log"
    daemon = Daemon(machines_dir, state_dir, log_path)
    try:
        write_machines(machines_dir, args.machines, args.interval)
        print(
            f"daemon: {args.machines} machines in {machines_dir}, state in {state_dir}", flush=True
        )
        spawned = daemon.start()
        figures.ready_seconds, first = wait_ready(
            daemon, args.machines, spawned, args.ready_timeout
        )
        print(f"ready after {figures.ready_seconds:.2f} s", flush=True)
        first = wait_first_runs(daemon, first, args.machines, args.interval)
        print(f"sampling for {args.duration:g} s", flush=True)

        samples: list[ProcSample] = []
        first_sample = proc_sample(daemon.pid)
        if first_sample is None:
            raise daemon.failed("the daemon vanished")
        samples.append(first_sample)
        end = first_sample.at + args.duration
        while (now := time.monotonic()) < end:
            time.sleep(min(1.0, end - now))
            sample = proc_sample(daemon.pid)
            if sample is None:
                raise daemon.failed("the daemon exited while running")
            samples.append(sample)
        last = query_status(state_dir)
        if last is None:
            raise daemon.failed("status did not answer at the end of the run")

        span = samples[-1].at - samples[0].at
        figures.rss_peak_kib = max(s.rss_kib for s in samples)
        figures.rss_final_kib = samples[-1].rss_kib
        figures.hwm_kib = samples[-1].hwm_kib
        figures.threads_peak = max(s.threads for s in samples)
        figures.cpu_self_pct = cpu_percent(samples[-1].self_ticks - samples[0].self_ticks, span)
        figures.cpu_children_pct = cpu_percent(
            samples[-1].child_ticks - samples[0].child_ticks, span
        )
        figures.window_seconds = last.at - first.at
        figures.exec_runs = last.exec_runs - first.exec_runs
        figures.exec_expected = args.machines * figures.window_seconds / args.interval
        figures.timer_runs = last.timer_runs - first.timer_runs
        intervals = effective_intervals(first, last)
        if intervals:
            figures.interval_mean = sum(intervals) / len(intervals)
            figures.interval_max = max(intervals)
        figures.transitions = last.transitions
        figures.rejected = last.rejected
        figures.store_errors = last.store_errors

        figures.stop_seconds, figures.exit_code = daemon.stop()
        records = read_log(log_path)
        problems: dict[str, int] = {}
        for record in records:
            level = str(record.get("level", "?"))
            figures.log_levels[level] = figures.log_levels.get(level, 0) + 1
            if level in ("warning", "error", "critical", "raw"):
                msg = re.sub(r"\bm\d+\b", "m<i>", str(record.get("msg", "")))[:80]
                problems[msg] = problems.get(msg, 0) + 1
            if str(record.get("msg", "")).startswith("steward started"):
                load = record.get("load_seconds")
                if isinstance(load, int | float):
                    figures.load_seconds = float(load)
        figures.problems = sorted(problems.items(), key=lambda kv: -kv[1])[:3]
        return figures
    finally:
        daemon.close()
        kept = f"machines {machines_dir}, state and log {state_dir}"
        keep_or_remove(args.keep, kept, machines_dir, state_dir)


# the record ------------------------------------------------------------------------------------
def section(figures: Figures) -> str:
    return results_section(
        f"load_machines: {figures.machines} machines, {figures.interval:g} s interval, "
        f"{figures.duration:g} s",
        figures.lines(),
        f"N = {figures.machines}, interval = {figures.interval:g} s, "
        f"duration = {figures.duration:g} s; each machine runs `/bin/true` every interval "
        "and makes two transitions per interval",
        headline=HEADLINE,
        commit_note=f"; load average at start: {figures.loadavg}",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(figures: Figures) -> None:
        print(
            f"--- {figures.machines} machines, interval {figures.interval:g} s, "
            f"duration {figures.duration:g} s, load average at start {figures.loadavg}"
        )
        report_figures(figures.lines(), lambda: section(figures), no_record=args.no_record)

    return run_main("load_machines", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
