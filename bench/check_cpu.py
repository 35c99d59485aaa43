#!/usr/bin/env python3
"""Scenario 1: CPU per check that changes no state. N machines each run ``/bin/true`` every
5 s and do nothing else; steward vs a bare asyncio spawn loop (the floor) vs monit.

The three run in the same run, one after the other, alternating (steward, floor, monit,
steward, …) for ``--rounds`` rounds, each a fresh process, so all see the same (shared,
noisy) box; the figures are the medians over the rounds.

- **steward**: the real daemon on ``--machines`` exec-only machines (``write_machines(...,
  exec_only=True)`` in benchlib: one exec watcher running ``/bin/true`` every ``--interval``,
  no timer, no transition), so what it does per check is the exec watcher's own work (the
  data file, the spawn, the capture, the result, the log line, the events and metrics) and
  nothing else: a check that changes no state.
- **floor**: ``spawn_floor.py`` as a subprocess: one asyncio task per machine spawning what
  steward spawns (same directory, pipes, environment, new session, timeout, schedule) with
  ``create_subprocess_exec`` + ``communicate``, and nothing else (its docstring says exactly
  what). The lowest a Python daemon on asyncio could spend per check.
- **monit** (Debian's ``monit``, ``apt-get install``-ed when missing and we are root), in the
  foreground (``monit -I -c`` a private monitrc, mode 0600, with its own idfile, statefile,
  pidfile and log, no httpd): one ``check program`` per machine running ``/bin/true`` (timeout
  10 s, ``if status != 0 then alert``) and ``set daemon <interval>``. monit checks every entry
  in each poll cycle (a program check collects the run it started last cycle and starts the
  next one), then sleeps the poll interval: its cycle is the interval plus the time the checks
  take, so it falls behind the configured rate, and by how much is measured.

This replaces two earlier comparisons (``monit_compare``, ``exec_floor``; see bench/README.md):
the first gave steward's machines a timer as well, so each steward check also committed two
fsync'ed transitions that monit never makes (``transition_cpu.py`` measures that cost on its
own); the second compared with the floor at 200 spawns per 1 s.

Steady state only: steward's window starts once every machine is listed, every exec watcher
has run once, and one more interval has passed; the floor's once it has spawned twice per
machine, and one more interval; monit's once it has started every program twice (the first
cycle only starts them, the second collects and starts again). The window is ``--duration``
(60 s) on every side, rounded to whole intervals. Over it:

- **CPU per check** = (utime + stime of the process + cutime + cstime of the children it
  reaped, from /proc/<pid>/stat at both ends) / the checks run in the window.
- **checks run** are counted the same way for all three: the kernel's proc connector (a
  netlink socket, root only; ``ChildExecs`` in benchlib) reports every program a direct child
  of the process exec'd, with its time. This costs the processes nothing. For steward the
  control API's own exec count (``steward status --json`` just before and after the window)
  is shown beside it. Each monit child is reaped in the cycle after it ran, just before its
  successor is started, so over a window the children reaped and the programs started are the
  same in number.
- **rate**: the configured interval over the effective one: for steward the mean time between
  the runs of each exec watcher (control API); for the floor from its runs in the window; for
  monit the median time between the starts of its poll cycles (from the exec times: a cycle
  starts after a pause of over half an interval).
- **RSS**: each process's peak RSS over the window (sampled every second), VmHWM shown too.

All three run with the same ``RLIMIT_NOFILE`` soft limit, ``--nofile`` (1024, what each gets
as a systemd service: Debian's monit init script and ``packaging/steward.service`` leave
systemd's default soft limit of 1024 alone; 0 keeps this shell's). It matters: monit's child
closes every descriptor up to that limit before it execs the program, so each check costs
monit's children roughly 5x more at a 20,000 limit than at 1,024. Where steward keeps its
exec watchers' data files (``WATCHER_DATA``, in its ``TMPDIR``) is recorded with that file
system's type.

Targets (one line each): steward's CPU per check ≤ 1.15x the floor's and ≤ monit's (at the
default open-file limit); its RSS ≤ 100 MB (decimal); its checks at ≥ 95 % of the configured
rate. Prints ``check-cpu-floor: … target: … ratio: … PASS|MISS`` and the others. If monit
cannot be had its line is ``check-cpu-monit: NOT RUN (monit: reason)``, said loudly, and the
script exits 2; 1 if the benchmark itself failed; else 0, PASS or MISS.

    .venv/bin/python bench/check_cpu.py --quick --no-record   # smoke: 50 machines, ~1 min
    .venv/bin/python bench/check_cpu.py                       # 1000 machines, 3 rounds
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    CLK_TCK,
    NOT_RUN_EXIT,
    BenchError,
    ChildExecs,
    Daemon,
    ProcSample,
    add_output_args,
    cpu_percent,
    keep_or_remove,
    loadavg,
    log_tail,
    not_run,
    positive_int,
    proc_sample,
    report_figures,
    results_section,
    run_main,
    short_state_dir,
    summary_line,
    write_machines,
)
from load_machines import (
    READY_TIMEOUT,
    Status,
    effective_intervals,
    query_status,
    wait_first_runs,
    wait_ready,
)
from spawn_floor import child_watcher_note

TARGET_RSS_BYTES = 100e6  # 100 MB, decimal
TARGET_FLOOR_RATIO = 1.15  # steward's CPU per check / the floor's
TARGET_MONIT_RATIO = 1.0  # steward's CPU per check / monit's (at DEFAULT_NOFILE)
TARGET_RATE = 0.95  # of the configured check rate
DEFAULT_NOFILE = 1024
CATCH_UP = 0.3  # seconds for the proc connector's thread to catch up after a window
MONITRC = """\
# a private monit for bench/check_cpu.py
set daemon {interval}
set logfile {dir}/monit.log
set idfile {dir}/monit.id
set statefile {dir}/monit.state
set pidfile {dir}/monit.pid
"""
MONIT_CHECK = """
check program p{index} with path "/bin/true" with timeout 10 seconds
    if status != 0 then alert
"""


# arguments -------------------------------------------------------------------------------------
def whole_seconds(text: str) -> float:
    """An argparse type: whole seconds (``5`` or ``5s``), monit's poll interval unit."""
    value = text.strip().removesuffix("s")
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds ≥ 1: {text!r}")
    return float(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="N machines running /bin/true every interval and nothing else: steward "
        "vs a bare asyncio spawn loop vs monit (CPU per check, RSS, rate), alternating rounds."
    )
    parser.add_argument(
        "--machines",
        type=positive_int,
        default=None,
        help="machines = floor tasks = monit checks (1000)",
    )
    parser.add_argument(
        "--interval", type=whole_seconds, default=5.0, help="check interval, whole seconds (5)"
    )
    parser.add_argument(
        "--duration",
        type=whole_seconds,
        default=None,
        help="steady window per side and round, rounded to whole intervals (60)",
    )
    parser.add_argument("--rounds", type=positive_int, default=None, help="rounds (3)")
    parser.add_argument(
        "--nofile",
        type=int,
        default=DEFAULT_NOFILE,
        help=f"RLIMIT_NOFILE soft limit for all three ({DEFAULT_NOFILE}; 0: keep this one)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 50 machines, 10 s, 1 round"
    )
    parser.add_argument(
        "--ready-timeout",
        type=whole_seconds,
        default=READY_TIMEOUT,
        help=f"give up if steward does not list every machine after this long ({READY_TIMEOUT:g})",
    )
    add_output_args(parser, "keep the machines dir, state dirs, logs and monitrc")
    args = parser.parse_args(argv)
    if args.machines is None:
        args.machines = 50 if args.quick else 1000
    if args.duration is None:
        args.duration = 10.0 if args.quick else 60.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    args.duration = max(1, round(args.duration / args.interval)) * args.interval
    return args


# one side's window -----------------------------------------------------------------------------
@dataclass
class Side:
    """One side's steady window in one round."""

    name: str
    machines: int
    interval: float  # configured
    startup: float = 0.0  # spawn -> window start
    window: float = 0.0  # seconds between the window's first and last sample
    runs: int = 0  # programs exec'd by the daemon's children in the window
    lost: int = 0  # proc connector overflows in the window (runs then undercounted)
    self_ticks: int = 0
    child_ticks: int = 0
    rss_peak_kib: int = 0
    hwm_kib: int = 0
    effective_interval: float = 0.0  # between two runs of one check
    api_runs: int | None = None  # steward: the control API's count, status to status
    api_window: float = 0.0
    exit_code: int | None = None
    note: str = ""  # what the process said on stderr (the floor's spawn errors)

    @property
    def expected(self) -> float:
        return self.machines * self.window / self.interval

    @property
    def run_interval(self) -> float:
        """The mean interval between two runs of one check, from the runs in the window."""
        return self.machines * self.window / self.runs if self.runs else 0.0

    @property
    def rate(self) -> float:
        """The configured check rate achieved (1.0 = every check on time)."""
        return self.interval / self.effective_interval if self.effective_interval else 0.0

    def ms_per_run(self, ticks: int) -> float:
        return ticks / CLK_TCK * 1000 / self.runs if self.runs else float("nan")

    @property
    def cpu_ms(self) -> float:
        return self.ms_per_run(self.self_ticks + self.child_ticks)

    @property
    def cpu_pct(self) -> float:
        return cpu_percent(self.self_ticks + self.child_ticks, self.window)


def measure_window(
    pid: int, seconds: float, execs: ChildExecs, side: Side, gone: Callable[[str], BenchError]
) -> None:
    """Sample ``pid`` every second for ``seconds``; fill ``side``'s window figures."""
    first = proc_sample(pid)
    if first is None:
        raise gone("it exited before its window")
    samples: list[ProcSample] = [first]
    end = first.at + seconds
    while (now := time.monotonic()) < end:
        time.sleep(min(1.0, end - now))
        sample = proc_sample(pid)
        if sample is None:
            raise gone("it exited during its window")
        samples.append(sample)
    last = samples[-1]
    time.sleep(CATCH_UP)  # the connector's thread files the last execs
    side.window = last.at - first.at
    side.runs = execs.count(pid, first.at, last.at)
    side.lost = execs.lost(first.at, last.at + CATCH_UP)
    side.self_ticks = last.self_ticks - first.self_ticks
    side.child_ticks = last.child_ticks - first.child_ticks
    side.rss_peak_kib = max(s.rss_kib for s in samples)
    side.hwm_kib = last.hwm_kib


def sleep_alive(
    seconds: float, alive: Callable[[], bool], gone: Callable[[str], BenchError]
) -> None:
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        time.sleep(min(0.2, end - now))
        if not alive():
            raise gone("it exited while settling")


def wait_for_runs(
    proc: subprocess.Popen[bytes],
    execs: ChildExecs,
    count: int,
    spawned: float,
    deadline: float,
    gone: Callable[[str], BenchError],
) -> None:
    """Until ``proc``'s children have exec'd ``count`` programs (BenchError if it exits first
    or ``deadline`` passes)."""
    while execs.count(proc.pid) < count:
        if proc.poll() is not None:
            raise gone("it exited before its runs")
        if time.monotonic() > deadline:
            raise gone(f"{execs.count(proc.pid)} program runs after {deadline - spawned:.0f} s")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, 30 s to exit, then SIGKILL; the exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def alternate(rounds: int, sides: list[tuple[str, Callable[[], Side], list[Side]]]) -> None:
    """Each round runs every side in turn (a fresh process each), appending to its list."""
    for r in range(1, rounds + 1):
        for label, run, runs in sides:
            print(f"round {r}/{rounds}: {label}", flush=True)
            side = run()
            runs.append(side)
            print(f"  {side.name}: {side_brief(side)}", flush=True)


def steward_round(
    args: argparse.Namespace, machines_dir: Path, settle: float, execs: ChildExecs, runs: list[Side]
) -> tuple[str, Callable[[], Side], list[Side]]:
    """steward's side of ``alternate``: a fresh daemon on ``machines_dir`` each round."""
    return (
        f"steward, {args.machines} machines",
        lambda: steward_window(
            machines_dir,
            Side("steward", args.machines, args.interval),
            args.duration,
            settle,
            execs,
            ready_timeout=args.ready_timeout,
            keep=args.keep,
        ),
        runs,
    )


def steward_window(
    machines_dir: Path,
    side: Side,
    seconds: float,
    settle: float,
    execs: ChildExecs,
    *,
    ready_timeout: float = READY_TIMEOUT,
    keep: bool = False,
) -> Side:
    """The real daemon on ``machines_dir`` (``side.machines`` machines with an exec watcher
    each): ready, every exec watcher run once, ``settle`` s more, then a ``seconds`` window.
    ``side.effective_interval`` is the control API's mean interval between runs."""
    state_dir = short_state_dir("sb-")
    daemon = Daemon(machines_dir, state_dir, state_dir / "daemon.log")
    try:
        spawned = daemon.start()
        execs.watch(daemon.pid)
        _, status = wait_ready(daemon, side.machines, spawned, ready_timeout)
        wait_first_runs(daemon, status, side.machines, side.interval)
        sleep_alive(settle, daemon.alive, lambda why: daemon.failed(f"steward: {why}"))
        before = query_status(state_dir)
        if before is None:
            raise daemon.failed("steward: status did not answer before the window")
        side.startup = time.monotonic() - spawned
        measure_window(
            daemon.pid, seconds, execs, side, lambda why: daemon.failed(f"steward: {why}")
        )
        after: Status | None = query_status(state_dir)
        if after is None:
            raise daemon.failed("steward: status did not answer after the window")
        side.api_runs = after.exec_runs - before.exec_runs
        side.api_window = after.at - before.at
        intervals = effective_intervals(before, after)
        side.effective_interval = statistics.fmean(intervals) if intervals else side.run_interval
        _, side.exit_code = daemon.stop()
        return side
    finally:
        daemon.close()
        keep_or_remove(keep, f"steward state and log {state_dir}", state_dir)


# the floor -------------------------------------------------------------------------------------
FLOOR_SCRIPT = Path(__file__).resolve().with_name("spawn_floor.py")


def floor_window(
    machines_dir: Path, side: Side, seconds: float, settle: float, execs: ChildExecs
) -> Side:
    """``spawn_floor.py`` as a subprocess: every task spawned twice, ``settle`` s more, then a
    ``seconds`` window. ``side.effective_interval`` is from its runs in the window."""
    argv = [
        *(sys.executable, str(FLOOR_SCRIPT), str(machines_dir)),
        *("--machines", str(side.machines), "--interval", f"{side.interval:g}"),
    ]
    spawned = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def gone(why: str) -> BenchError:
        code = proc.poll()
        assert proc.stderr is not None
        err = proc.stderr.read().decode(errors="replace")[-2000:] if code is not None else ""
        return BenchError(f"floor: {why} (exit code {code}) {err}".rstrip())

    try:
        execs.watch(proc.pid)
        deadline = spawned + 3 * side.interval + 60
        wait_for_runs(proc, execs, 2 * side.machines, spawned, deadline, gone)
        sleep_alive(settle, lambda: proc.poll() is None, gone)
        side.startup = time.monotonic() - spawned
        measure_window(proc.pid, seconds, execs, side, gone)
        side.effective_interval = side.run_interval
        side.exit_code = stop_process(proc)
        assert proc.stderr is not None
        side.note = proc.stderr.read().decode(errors="replace").strip()
        return side
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


# monit -----------------------------------------------------------------------------------------
class MonitMissing(BenchError):
    """monit is not on PATH and cannot be installed."""


def ensure_monit() -> str:
    """monit's path; ``apt-get install -y monit`` first if it is missing and we are root.
    Raises MonitMissing saying why it cannot be had."""
    found = shutil.which("monit")
    if found:
        return found
    if os.geteuid() != 0:
        raise MonitMissing("not on PATH, and only root may apt-get install it")
    if shutil.which("apt-get") is None:
        raise MonitMissing("not on PATH, and there is no apt-get to install it with")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "monit"]
    why = ""
    for argv in (install, ["apt-get", "update"], install):
        print(f"monit is missing: {' '.join(argv)}", flush=True)
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = f"`{' '.join(argv)}` failed: {exc}"
            continue
        if out.returncode != 0:
            tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-2:])
            why = f"`{' '.join(argv)}` exited {out.returncode}: {tail}"
        elif argv is install and shutil.which("monit"):
            break
    found = shutil.which("monit")
    if not found:
        raise MonitMissing(why or "apt-get installed monit but it is not on PATH")
    return found


def monit_version(monit: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([monit, "-V"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0].removeprefix("This is ")
    return "?"


def write_monitrc(work_dir: Path, count: int, interval: float) -> Path:
    """A monitrc (mode 0600: monit refuses anything else) with ``count`` program checks."""
    text = MONITRC.format(interval=int(interval), dir=work_dir)
    text += "".join(MONIT_CHECK.format(index=i) for i in range(count))
    path = work_dir / "monitrc"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def cycle_period(times: list[float], interval: float, since: float) -> float | None:
    """The median time between the starts of monit's poll cycles from ``since`` on, from its
    runs' times (all of them: a cycle starts after a pause of over half an interval). None
    with fewer than two cycles."""
    starts = [t for prev, t in itertools.pairwise(times) if t - prev > interval / 2 and t >= since]
    if len(starts) < 2:
        return None
    return statistics.median(b - a for a, b in itertools.pairwise(starts))


def monit_window(
    monit: str, side: Side, seconds: float, execs: ChildExecs, *, keep: bool = False
) -> Side:
    """monit in the foreground on a private monitrc: steady (every program started twice),
    then a ``seconds`` window. ``side.effective_interval`` is the median cycle period."""
    work_dir = short_state_dir("sm-")
    out_path = work_dir / "monit.out"
    rc = write_monitrc(work_dir, side.machines, side.interval)
    proc: subprocess.Popen[bytes] | None = None

    def gone(why: str) -> BenchError:
        code = proc.poll() if proc is not None else None
        logs = f"{log_tail(out_path)}\n{log_tail(work_dir / 'monit.log')}"
        return BenchError(f"monit: {why} (exit code {code}); output and log tail:\n{logs}")

    try:
        with open(out_path, "ab") as out:
            spawned = time.monotonic()
            proc = subprocess.Popen(
                [monit, "-I", "-c", str(rc)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=work_dir,
            )
        execs.watch(proc.pid)
        # steady once it has started every program twice: the second cycle collects
        deadline = spawned + 3 * side.interval + 0.05 * side.machines + 30
        wait_for_runs(proc, execs, 2 * side.machines, spawned, deadline, gone)
        steady = time.monotonic()
        side.startup = steady - spawned
        measure_window(proc.pid, seconds, execs, side, gone)
        period = cycle_period(execs.times(proc.pid), side.interval, steady)
        side.effective_interval = period or side.run_interval
        side.exit_code = stop_process(proc)
        return side
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        keep_or_remove(keep, f"monitrc, monit log and state {work_dir}", work_dir)


# figures ---------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def per_round(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in values)


def data_dir_note() -> str:
    """Where steward's exec watchers keep their data files (``WATCHER_DATA``: the daemon's
    ``tempfile.gettempdir()``, from the TMPDIR it inherits from us) and that file system's
    type: on a disk file system, creating and removing files costs kernel time that tmpfs
    does not."""
    path = tempfile.gettempdir()
    mount, fstype = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            point = fields[1]
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(mount):
                mount, fstype = point, fields[2]
    return f"{path} ({fstype})"


SIDES = ("steward", "floor", "monit")


@dataclass
class Figures:
    machines: int
    interval: float
    window: float
    rounds: int
    nofile: str = "?"
    monit: str = "?"
    floor_watcher: str = "?"
    data_dir: str = "?"
    loadavg: str = "?"
    monit_not_run: str | None = None
    runs: dict[str, list[Side]] = field(default_factory=lambda: {name: [] for name in SIDES})

    def med(self, side: str, value: Callable[[Side], float]) -> float:
        return median([value(s) for s in self.runs[side]])

    def cpu(self, side: str) -> float:
        return self.med(side, lambda s: s.cpu_ms)

    def ratio(self, other: str) -> float:
        return self.cpu("steward") / self.cpu(other)

    @property
    def rss_mb(self) -> float:
        return self.med("steward", lambda s: s.rss_peak_kib) * 1024 / 1e6

    @property
    def rate(self) -> float:
        return self.med("steward", lambda s: s.rate)

    @property
    def monit_ran(self) -> bool:
        return bool(self.runs["monit"]) and not self.monit_not_run

    def side_lines(self, name: str) -> list[tuple[str, str]]:
        runs = self.runs[name]
        if not runs:
            return []

        def m(value: Callable[[Side], float]) -> float:
            return median([value(s) for s in runs])

        cpu = m(lambda s: s.cpu_ms)
        cpu_self = m(lambda s: s.ms_per_run(s.self_ticks))
        cpu_children = m(lambda s: s.ms_per_run(s.child_ticks))
        lost = sum(1 for s in runs if s.lost)
        rss = m(lambda s: s.rss_peak_kib)
        rows = [
            (
                f"{name}: CPU per check (process + reaped children)",
                f"{cpu:.3f} ms (process {cpu_self:.3f} + children {cpu_children:.3f}); "
                f"rounds {per_round([s.cpu_ms for s in runs], '.3f')}",
            ),
            (
                f"{name}: CPU, % of one core",
                f"{m(lambda s: s.cpu_pct):.1f} %; "
                f"rounds {per_round([s.cpu_pct for s in runs], '.1f')}",
            ),
            (
                f"{name}: checks run in the window (proc connector)",
                f"{m(lambda s: s.runs):.0f} of {m(lambda s: s.expected):.0f} at the configured "
                f"rate in {m(lambda s: s.window):.1f} s; rounds "
                f"{per_round([s.runs for s in runs], '.0f')}"
                + (f"; events LOST in {lost} rounds (undercounted)" if lost else ""),
            ),
            (
                f"{name}: check rate (configured / effective interval)",
                f"{m(lambda s: s.rate):.1%} (effective interval "
                f"{m(lambda s: s.effective_interval):.3f} s, configured {self.interval:g} s); "
                f"rounds {per_round([s.rate * 100 for s in runs], '.1f')} %",
            ),
            (
                f"{name}: RSS peak in the window / VmHWM",
                f"{rss / 1024:.1f} MiB ({rss * 1024 / 1e6:.1f} MB) / "
                f"{m(lambda s: s.hwm_kib) / 1024:.1f} MiB",
            ),
            (
                f"{name}: start-up (spawn -> window)",
                f"{m(lambda s: s.startup):.1f} s; exit codes "
                + ", ".join(str(s.exit_code) for s in runs),
            ),
        ]
        if name == "steward":
            rows.append(
                (
                    "steward: exec runs by the control API (status to status)",
                    per_round([s.api_runs or 0 for s in runs], ".0f")
                    + f" in {m(lambda s: s.api_window):.1f} s",
                )
            )
        notes = "; ".join(s.note for s in runs if s.note)
        if notes:
            rows.append((f"{name}: said", notes))
        return rows

    def lines(self) -> list[tuple[str, str]]:
        rows = [
            (
                "rounds",
                f"{self.rounds}, alternating steward / floor / monit, a fresh process each; "
                f"{self.window:g} s steady window per side",
            ),
            ("RLIMIT_NOFILE of all three (soft/hard)", self.nofile),
            ("steward's exec data files (WATCHER_DATA) in", self.data_dir),
            ("floor: child watcher", self.floor_watcher),
            ("monit", f"NOT RUN ({self.monit_not_run})" if self.monit_not_run else self.monit),
            *self.side_lines("steward"),
            *self.side_lines("floor"),
            *self.side_lines("monit"),
            (
                "ratio: steward / floor CPU per check (medians)",
                f"{self.ratio('floor'):.2f} (target ≤ {TARGET_FLOOR_RATIO:g})",
            ),
        ]
        if self.monit_ran:
            rows.append(
                (
                    "ratio: steward / monit CPU per check (medians)",
                    f"{self.ratio('monit'):.2f} (target ≤ {TARGET_MONIT_RATIO:g})",
                )
            )
        return rows

    def summaries(self) -> list[str]:
        checks = f"{self.machines} checks every {self.interval:g} s"
        steward = f"steward {self.cpu('steward'):.3f} ms/check"
        lines = [
            summary_line(
                "check-cpu-floor",
                f"{checks}: {steward}, floor {self.cpu('floor'):.3f} ms/check",
                f"steward ≤ {TARGET_FLOOR_RATIO:g}x the floor",
                f"{self.ratio('floor'):.2f}",
                self.ratio("floor") <= TARGET_FLOOR_RATIO,
            )
        ]
        if self.monit_ran:
            lines.append(
                summary_line(
                    "check-cpu-monit",
                    f"{checks}: {steward}, monit {self.cpu('monit'):.3f} ms/check "
                    f"(RLIMIT_NOFILE {self.nofile.partition('/')[0]})",
                    f"steward ≤ {TARGET_MONIT_RATIO:g}x monit",
                    f"{self.ratio('monit'):.2f}",
                    self.ratio("monit") <= TARGET_MONIT_RATIO,
                )
            )
        else:
            lines.append(f"check-cpu-monit: NOT RUN (monit: {self.monit_not_run})")
        monit_rate = f", monit {self.med('monit', lambda s: s.rate):.1%}" if self.monit_ran else ""
        lines += [
            summary_line(
                "check-rss",
                f"steward {self.rss_mb:.1f} MB ({self.machines} exec machines)",
                f"≤ {TARGET_RSS_BYTES / 1e6:.0f} MB",
                f"{self.rss_mb * 1e6 / TARGET_RSS_BYTES:.2f}",
                self.rss_mb * 1e6 <= TARGET_RSS_BYTES,
            ),
            summary_line(
                "check-rate",
                f"steward {self.rate:.1%} of the configured rate{monit_rate}",
                f"≥ {TARGET_RATE:.0%}",
                f"{self.rate / TARGET_RATE:.2f}",
                self.rate >= TARGET_RATE,
            ),
        ]
        return lines


# the run ---------------------------------------------------------------------------------------
def set_nofile(soft: int) -> str:
    """Lower (or raise, up to the hard limit) this process's RLIMIT_NOFILE soft limit, which
    the processes measured inherit; ``soft/hard`` as it then is."""
    current, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft > 0:
        limit = soft if hard == resource.RLIM_INFINITY else min(soft, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        current = limit
    return f"{current}/{'unlimited' if hard == resource.RLIM_INFINITY else hard}"


def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.machines, args.interval, args.duration, args.rounds, loadavg=loadavg())
    figures.data_dir = data_dir_note()
    figures.floor_watcher = child_watcher_note()
    monit: str | None = None
    try:
        monit = ensure_monit()
        figures.monit = f"{monit_version(monit)} (set daemon {args.interval:g})"
    except MonitMissing as exc:
        figures.monit_not_run = str(exc)
    figures.nofile = set_nofile(args.nofile)
    settle = 1.0 if args.quick else args.interval
    machines_dir = Path(tempfile.mkdtemp(prefix="steward-bench-machines-"))
    try:
        write_machines(machines_dir, args.machines, args.interval, exec_only=True)
        with ChildExecs() as execs:
            sides = [
                steward_round(args, machines_dir, settle, execs, figures.runs["steward"]),
                (
                    f"floor, {args.machines} tasks",
                    lambda: floor_window(
                        machines_dir,
                        Side("floor", args.machines, args.interval),
                        args.duration,
                        settle,
                        execs,
                    ),
                    figures.runs["floor"],
                ),
            ]
            if monit is not None:
                found = monit
                sides.append(
                    (
                        f"monit, {args.machines} checks",
                        lambda: monit_window(
                            found,
                            Side("monit", args.machines, args.interval),
                            args.duration,
                            execs,
                            keep=args.keep,
                        ),
                        figures.runs["monit"],
                    )
                )
            alternate(args.rounds, sides)
        return figures
    finally:
        keep_or_remove(args.keep, f"machines {machines_dir}", machines_dir)


def side_brief(s: Side) -> str:
    lost = f", {s.lost} proc connector overflows (runs undercounted)" if s.lost else ""
    return (
        f"{s.cpu_ms:.3f} ms/run, {s.runs} runs in {s.window:.1f} s ({s.rate:.1%} of the rate), "
        f"RSS {s.rss_peak_kib / 1024:.1f} MiB, CPU {s.cpu_pct:.1f} %{lost}"
    )


def section(figures: Figures) -> str:
    return results_section(
        f"check_cpu: {figures.machines} checks every {figures.interval:g} s that change no "
        f"state, steward vs floor vs monit, {figures.rounds} rounds of {figures.window:g} s",
        figures.lines(),
        f"steward: {figures.machines} exec-only machines (exec `/bin/true` every "
        f"{figures.interval:g} s, no timer, no transition); floor: `spawn_floor.py`, one "
        "asyncio task per machine, `create_subprocess_exec` + `communicate` with steward's "
        f"pipes, env, cwd and new session, same schedule; monit: {figures.machines} `check "
        f"program` `/bin/true`, `set daemon {figures.interval:g}`; alternating rounds, "
        "medians; CPU per check = (process utime+stime + reaped children's) / programs its "
        "children exec'd in the steady window (kernel proc connector)",
        commit_note=f"; load average at start: {figures.loadavg}",
        footer="\n".join(f"`{line}`  " for line in figures.summaries()),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(figures: Figures) -> int:
        print(
            f"--- {figures.machines} checks every {figures.interval:g} s, {figures.rounds} "
            f"rounds of {figures.window:g} s, load average at start {figures.loadavg}"
        )
        report_figures(
            figures.lines(),
            lambda: section(figures),
            figures.summaries(),
            no_record=args.no_record,
        )
        if not figures.monit_ran:
            not_run("check-cpu-monit", f"monit: {figures.monit_not_run}")
            return NOT_RUN_EXIT
        return 0

    return run_main("check_cpu", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
