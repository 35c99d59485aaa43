#!/usr/bin/env python3
"""The exec watcher's overhead over the floor: CPU per ``/bin/true`` spawn, steward vs bare
asyncio.

Both sides spawn ``/bin/true`` ``--machines`` times per ``--interval`` (200 per 1 s), one
after the other, alternating (steward, floor, steward, …) for ``--rounds`` rounds, each a
fresh process; the figures are the medians over the rounds.

- **steward**: the real daemon on ``--machines`` exec-only machines (``write_machines(...,
  exec_only=True)`` in benchlib: one exec watcher running ``/bin/true`` every interval, no
  timer, no transition), so what it does per run is the exec watcher's own work (the data
  file, the spawn, the capture, the result, the log and events) and nothing else.
- **floor**: this script with ``--run-floor``, a separate process (so its /proc stat is its
  own) that does only the spawn as steward does it (``steward/watchers/exec.py``), on the same
  Python: per machine an asyncio task that runs ``asyncio.create_subprocess_exec("/bin/true")``
  in the machine's directory with stdin from /dev/null, stdout and stderr piped and read to
  the end (``communicate``), ``start_new_session`` (its own process group and session), an
  environment of the same five variables (``PATH``, ``MACHINE_NAME``, ``MACHINE_STATE``,
  ``MACHINE_WATCHER_NAME``, ``WATCHER_DATA``; no data file is written), under a 10 s
  ``asyncio.timeout``, then sleeps what is left of the interval (steward's schedule: the next
  run starts an interval after this one started). On Python 3.11 it waits for its children
  with ``asyncio.PidfdChildWatcher``, as steward's daemon does (3.12+ does so by default):
  3.11's default watcher starts a thread per child, which would raise the floor.

Steady state only: steward's window starts once every machine is listed, every exec watcher
has run once, and one more interval has passed; the floor's once every task has spawned
twice, and one more interval. The window is ``--duration`` (30 s) on both sides, rounded to
whole intervals. Over it, CPU per spawn = (utime + stime of the process + cutime + cstime of
the children it reaped, from /proc/<pid>/stat at both ends) / the programs its direct
children exec'd in the window, counted for both by the kernel's proc connector (``ChildExecs``
in benchlib: root only, and free for the processes measured). Where steward keeps its data
files (its ``TMPDIR``) is recorded with that file system's type: the floor writes none, and
file churn on a disk file system costs kernel time that tmpfs does not.

Target: steward ≤ 1.5x the floor's CPU per spawn. Prints ``exec-floor: … target: … ratio: …
PASS|MISS``; exits 0 either way (1 only if the benchmark itself could not run).

    .venv/bin/python bench/exec_floor.py --quick --no-record   # smoke: 50 machines, 5 s
    .venv/bin/python bench/exec_floor.py                       # 200 x 1 s, 30 s, 3 rounds
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    BenchError,
    ChildExecs,
    add_output_args,
    duration_arg,
    keep_or_remove,
    loadavg,
    positive_int,
    report_figures,
    results_section,
    run_main,
    summary_line,
    write_machines,
)
from load_machines import READY_TIMEOUT
from monit_compare import (
    Side,
    alternate,
    data_dir_note,
    measure_window,
    median,
    per_round,
    steward_round,
    stop_process,
    wait_for_runs,
)

TARGET_RATIO = 1.5  # steward's CPU per spawn / the floor's
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # as exec.py's
EXEC_TIMEOUT = 10.0


# arguments -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CPU per /bin/true spawn: steward's exec watcher vs a bare asyncio loop "
        "doing the same spawns at the same rate, alternating rounds."
    )
    parser.add_argument(
        "--machines", type=positive_int, default=None, help="spawns per interval (200)"
    )
    parser.add_argument(
        "--interval", type=duration_arg, default=1.0, help="each machine's interval (1s)"
    )
    parser.add_argument(
        "--duration",
        type=duration_arg,
        default=None,
        help="steady window per side and round, rounded to whole intervals (30s)",
    )
    parser.add_argument("--rounds", type=positive_int, default=None, help="rounds (3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 machines, 5 s, 1 round")
    parser.add_argument(
        "--ready-timeout",
        type=duration_arg,
        default=READY_TIMEOUT,
        help=f"give up if steward does not list every machine after this long ({READY_TIMEOUT:g}s)",
    )
    # the floor itself, run by this script as a subprocess: spawn until SIGTERM
    parser.add_argument("--run-floor", type=Path, metavar="MACHINES_DIR", help=argparse.SUPPRESS)
    add_output_args(parser, "keep the machines dir, the state dirs and the daemon's logs")
    args = parser.parse_args(argv)
    if args.machines is None:
        args.machines = 50 if args.quick else 200
    if args.duration is None:
        args.duration = 5.0 if args.quick else 30.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    args.duration = max(1, round(args.duration / args.interval)) * args.interval
    return args


# the floor -------------------------------------------------------------------------------------
async def floor_machine(directory: Path, interval: float) -> None:
    """One machine's exec watcher, bare: spawn as steward does, capture, sleep, again."""
    loop = asyncio.get_running_loop()
    env = {
        "PATH": f"{directory}:{DEFAULT_PATH}",
        "MACHINE_NAME": directory.name,
        "MACHINE_STATE": "idle",
        "MACHINE_WATCHER_NAME": "probe",
        "WATCHER_DATA": f"/tmp/steward-data-{directory.name}xxxxxxxx.json",
    }
    while True:
        started = loop.time()
        proc = await asyncio.create_subprocess_exec(
            "/bin/true",
            cwd=directory,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        async with asyncio.timeout(EXEC_TIMEOUT):
            await proc.communicate()
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))


def pidfds_wanted() -> bool:
    """Whether the floor waits for its children with pidfds on the loop, as steward's daemon
    does on 3.11 (3.12+ does by itself): 3.11's default watcher starts a thread per child, a
    cost the floor must not carry when steward does not. False before 3.11's need or where
    pidfds cannot be had (old kernel, seccomp)."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


def child_watcher_note() -> str:
    if pidfds_wanted():
        return "asyncio.PidfdChildWatcher (as steward's daemon on 3.11)"
    if sys.version_info >= (3, 12):
        return "asyncio's default (pidfds where the kernel has them)"
    return "asyncio's default (a thread per child)"


async def floor(machines_dir: Path, count: int, interval: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if pidfds_wanted():
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)
    tasks = [
        asyncio.create_task(floor_machine(machines_dir / f"m{i}", interval)) for i in range(count)
    ]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def floor_window(
    machines_dir: Path, side: Side, seconds: float, settle: float, execs: ChildExecs
) -> Side:
    """The floor as a subprocess: every task spawned twice, ``settle`` s more, a window."""
    argv = [
        *(sys.executable, str(Path(__file__).resolve()), "--run-floor", str(machines_dir)),
        *("--machines", str(side.machines), "--interval", f"{side.interval}s"),
    ]
    spawned = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def gone(why: str) -> BenchError:
        code = proc.poll()
        err = proc.stderr.read().decode(errors="replace")[-2000:] if code is not None else ""
        return BenchError(f"floor: {why} (exit code {code}) {err}".rstrip())

    try:
        execs.watch(proc.pid)
        deadline = spawned + 2 * side.interval + 60
        wait_for_runs(proc, execs, 2 * side.machines, spawned, deadline, gone)
        time.sleep(settle)
        side.startup = time.monotonic() - spawned
        measure_window(proc.pid, seconds, execs, side, gone)
        side.effective_interval = side.run_interval
        side.exit_code = stop_process(proc)
        return side
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


# figures ---------------------------------------------------------------------------------------
@dataclass
class Figures:
    machines: int
    interval: float
    window: float
    rounds: int
    loadavg: str = "?"
    data_dir: str = "?"
    floor_watcher: str = "?"
    steward_runs: list[Side] = field(default_factory=list)
    floor_runs: list[Side] = field(default_factory=list)

    def med(self, side: str, value: Callable[[Side], float]) -> float:
        return median([value(s) for s in getattr(self, f"{side}_runs")])

    @property
    def ratio(self) -> float:
        return self.med("steward", lambda s: s.cpu_ms) / self.med("floor", lambda s: s.cpu_ms)

    @property
    def passed(self) -> bool:
        return self.ratio <= TARGET_RATIO

    def side_lines(self, name: str) -> list[tuple[str, str]]:
        runs: list[Side] = getattr(self, f"{name}_runs")

        def m(value: Callable[[Side], float]) -> float:
            return median([value(s) for s in runs])

        lost = sum(1 for s in runs if s.lost)
        return [
            (
                f"{name}: CPU per spawn (process + reaped children)",
                f"{m(lambda s: s.cpu_ms):.3f} ms (process "
                f"{m(lambda s: s.ms_per_run(s.self_ticks)):.3f} + children "
                f"{m(lambda s: s.ms_per_run(s.child_ticks)):.3f}); rounds "
                f"{per_round([s.cpu_ms for s in runs], '.3f')}",
            ),
            (
                f"{name}: CPU, % of one core",
                f"{m(lambda s: s.cpu_pct):.1f} %; "
                f"rounds {per_round([s.cpu_pct for s in runs], '.1f')}",
            ),
            (
                f"{name}: spawns in the window (proc connector)",
                f"{m(lambda s: s.runs):.0f} of {m(lambda s: s.expected):.0f} at the configured "
                f"rate in {m(lambda s: s.window):.1f} s; rounds "
                f"{per_round([s.runs for s in runs], '.0f')}"
                + (f"; events LOST in {lost} rounds (undercounted)" if lost else ""),
            ),
            (
                f"{name}: RSS peak in the window",
                f"{m(lambda s: s.rss_peak_kib) / 1024:.1f} MiB",
            ),
        ]

    def lines(self) -> list[tuple[str, str]]:
        return [
            (
                "rounds",
                f"{self.rounds}, alternating steward / floor, a fresh process each; "
                f"{self.window:g} s steady window per side",
            ),
            ("steward's exec data files (WATCHER_DATA) in", self.data_dir),
            *self.side_lines("steward"),
            (
                "steward: effective exec interval (control API)",
                f"{self.med('steward', lambda s: s.effective_interval):.3f} s "
                f"(configured {self.interval:g} s)",
            ),
            ("floor: child watcher", self.floor_watcher),
            *self.side_lines("floor"),
            (
                "ratio: steward / floor CPU per spawn (medians)",
                f"{self.ratio:.2f} (target ≤ {TARGET_RATIO:g}) {'PASS' if self.passed else 'MISS'}",
            ),
        ]

    def summary(self) -> str:
        return summary_line(
            "exec-floor",
            f"{self.machines} spawns every {self.interval:g} s: steward "
            f"{self.med('steward', lambda s: s.cpu_ms):.3f} ms/spawn, floor "
            f"{self.med('floor', lambda s: s.cpu_ms):.3f} ms/spawn",
            f"steward ≤ {TARGET_RATIO:g}x the floor",
            f"{self.ratio:.2f}",
            self.passed,
        )


# the run ---------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.machines, args.interval, args.duration, args.rounds, loadavg=loadavg())
    figures.data_dir = data_dir_note()
    figures.floor_watcher = child_watcher_note()
    settle = args.interval
    machines_dir = Path(tempfile.mkdtemp(prefix="steward-bench-machines-"))
    try:
        write_machines(machines_dir, args.machines, args.interval, exec_only=True)
        with ChildExecs() as execs:
            alternate(
                args.rounds,
                [
                    steward_round(args, machines_dir, settle, execs, figures.steward_runs),
                    (
                        f"floor, {args.machines} tasks",
                        lambda: floor_window(
                            machines_dir,
                            Side("floor", args.machines, args.interval),
                            args.duration,
                            settle,
                            execs,
                        ),
                        figures.floor_runs,
                    ),
                ],
            )
        return figures
    finally:
        keep_or_remove(args.keep, f"machines {machines_dir}", machines_dir)


def section(figures: Figures) -> str:
    return results_section(
        f"exec_floor: {figures.machines} x /bin/true every {figures.interval:g} s, steward vs "
        f"bare asyncio, {figures.rounds} rounds of {figures.window:g} s",
        figures.lines(),
        f"steward: {figures.machines} exec-only machines (exec `/bin/true` every "
        f"{figures.interval:g} s, no timer, no transition); floor: one asyncio task per "
        "machine, `create_subprocess_exec` + `communicate` with steward's pipes, env, cwd and "
        "new session, same schedule; alternating rounds, medians; CPU per spawn = (process "
        "utime+stime + reaped children's) / programs its children exec'd in the steady window "
        "(kernel proc connector)",
        commit_note=f"; load average at start: {figures.loadavg}",
        footer=f"`{figures.summary()}`",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_floor is not None:
        asyncio.run(floor(args.run_floor, args.machines, args.interval))
        return 0

    def report(figures: Figures) -> None:
        print(
            f"--- {figures.machines} spawns every {figures.interval:g} s, {figures.rounds} "
            f"rounds of {figures.window:g} s, load average at start {figures.loadavg}"
        )
        report_figures(
            figures.lines(),
            lambda: section(figures),
            [figures.summary()],
            no_record=args.no_record,
        )

    return run_main("exec_floor", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
