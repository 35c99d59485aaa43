#!/usr/bin/env python3
"""CLI speed: how long the commands operators type take, against a bare interpreter.

Each command is a new process, as when an operator or a script calls it, timed from spawn to
exit (wall) with its CPU (``wait4``; its peak RSS from one more run under GNU time). In every
round the bare interpreter (``python -I -c pass``) and each command run once, one after the
other, so a busy moment of this shared box hits both sides alike; the ratios are of the
medians.

- **version**: ``steward version``; target ≤ 3x the bare interpreter.
- **status**: ``steward status --config FILE`` against a running daemon with 100 machines
  (timer + exec each, as in ``load_machines.py``); the config file names the daemon's state
  dir, as ``/etc/steward/steward.yaml`` does on an installed node, so reading it is part of the
  figure; target ≤ 5x. ``status --json`` and ``status --socket`` (no config file) are
  information.
- **validate**: ``steward validate machines/`` (the 5 example machines); target ≤ 6x.

Commands run the packaged way, as ``/usr/bin/steward`` runs them (``python -I -B -m steward``),
in a venv made for this (``bench/.tools/cli-venv``) whose only ``.pth`` puts this checkout and
the running interpreter's site-packages on ``sys.path``: the development venv's editable
install adds an import hook to every start (``__editable___…_finder``, pathlib and more),
which a package does not have. That cost is shown as information: ``steward version``
through the development venv's own interpreter.

    .venv/bin/python bench/cli_speed.py --quick --no-record   # smoke: 5 rounds
    .venv/bin/python bench/cli_speed.py                       # 30 rounds, recorded

Prints ``cli-version: …``, ``cli-status: …`` and ``cli-validate: …`` lines (``… target: …
ratio: … PASS|MISS``); exits 0 either way (1 only if the benchmark itself could not run).
"""

from __future__ import annotations

import argparse
import os
import site
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    REPO_DIR,
    TOOLS_DIR,
    Api,
    BenchError,
    Daemon,
    add_output_args,
    keep_or_remove,
    loadavg,
    positive_int,
    report_figures,
    results_section,
    run_main,
    short_state_dir,
    summary_line,
    wait_for,
    write_machines,
)

MACHINES = 100
INTERVAL = 10.0  # seconds between each machine's exec runs: a daemon at work, not flat out
READY_TIMEOUT = 120.0
RUN_TIMEOUT = 30.0  # seconds one command may take
TARGETS = {"version": 3.0, "status": 5.0, "validate": 6.0}  # x the bare interpreter
VENV = TOOLS_DIR / "cli-venv"
GNU_TIME = "/usr/bin/time"


# arguments -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time steward version, status and validate against a bare interpreter."
    )
    parser.add_argument("--rounds", type=positive_int, default=None, help="rounds (default 30)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 rounds")
    add_output_args(parser, "keep the machines and state dirs (and the daemon's log)")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 5 if args.quick else 30
    return args


# the packaged interpreter ----------------------------------------------------------------------
def packaged_python() -> Path:
    """A venv's python that imports steward from this checkout and its dependencies from the
    running interpreter's site-packages by plain ``sys.path`` entries (no editable finder)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", "--clear", str(VENV)],
            check=True,
            capture_output=True,
        )
    probe = "import sys; print(sys.path[-1])"
    out = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, check=True)
    own_site = Path(out.stdout.strip())
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (own_site / "steward-bench.pth").write_text("\n".join([str(REPO_DIR), *deps]) + "\n")
    return python


# one command -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    wall: float  # seconds, spawn to exit
    cpu: float  # seconds, user + system


def run_measured(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> Run:
    """Spawn ``argv``, wait for it with ``wait4``: its wall time and CPU. (Not its peak RSS:
    a child spawned by a big process inherits the parent's high-water mark across exec.)"""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env
        )
        watchdog = threading.Timer(RUN_TIMEOUT, proc.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            err.seek(0)
            tail = err.read()[-400:]
            raise BenchError(f"`{' '.join(argv)}` exited {code}: {tail!r}")
    return Run(wall, usage.ru_utime + usage.ru_stime)


def peak_rss_kib(argv: list[str], env: dict[str, str]) -> int | None:
    """The peak RSS of one run of ``argv``, by GNU time (a small parent), if it is there."""
    if not Path(GNU_TIME).is_file():
        return None
    out = subprocess.run(
        [GNU_TIME, "-f", "%M", *argv], capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT
    )
    last = out.stderr.strip().splitlines()[-1:] or [""]
    return int(last[0]) if last[0].isdigit() else None


# the figures -----------------------------------------------------------------------------------
@dataclass
class Figures:
    rounds: int
    loadavg: str
    runs: dict[str, list[Run]] = field(default_factory=dict)
    rss_kib: dict[str, int] = field(default_factory=dict)  # peak, one run under /usr/bin/time

    def add(self, name: str, run: Run) -> None:
        self.runs.setdefault(name, []).append(run)

    def wall(self, name: str) -> float:
        return statistics.median(r.wall for r in self.runs[name])

    def ratio(self, name: str) -> float:
        return self.wall(name) / self.wall("bare")

    def describe(self, name: str) -> str:
        runs = self.runs[name]
        cpu = statistics.median(r.cpu for r in runs)
        rss = f", peak RSS {self.rss_kib[name] / 1024:.1f} MiB" if name in self.rss_kib else ""
        bare_cpu = statistics.median(r.cpu for r in self.runs["bare"])
        ratio = (
            "" if name == "bare" else f", {self.ratio(name):.2f}x bare (CPU {cpu / bare_cpu:.2f}x)"
        )
        return (
            f"{self.wall(name) * 1000:.1f} ms wall (min {min(r.wall for r in runs) * 1000:.1f})"
            f", CPU {cpu * 1000:.1f} ms{rss}{ratio}"
        )

    def lines(self) -> list[tuple[str, str]]:
        labels = {
            "bare": "python -I -c pass",
            "version": "steward version",
            "status": f"steward status --config FILE ({MACHINES} machines)",
            "status-json": "steward status --json --config FILE",
            "status-socket": "steward status --socket SOCK (no config file)",
            "validate": "steward validate machines/ (5 examples)",
            "version-editable": "steward version, development venv (editable install)",
        }
        out = [("rounds", str(self.rounds))]
        out += [(labels[name], self.describe(name)) for name in labels if name in self.runs]
        return out

    def summaries(self) -> list[str]:
        what = {
            "version": "steward version",
            "status": f"steward status, daemon with {MACHINES} machines",
            "validate": "steward validate of the 5 example machines",
        }
        return [
            summary_line(
                f"cli-{name}",
                f"{what[name]} {self.wall(name) * 1000:.0f} ms vs python -I -c pass "
                f"{self.wall('bare') * 1000:.0f} ms (medians of {self.rounds})",
                f"≤ {target:g}x python -I -c pass",
                f"{self.ratio(name):.2f}",
                self.ratio(name) <= target,
            )
            for name, target in TARGETS.items()
        ]


# the run ---------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.rounds, loadavg())
    python = str(packaged_python())
    steward = [python, "-I", "-B", "-m", "steward"]
    machines_dir = Path(tempfile.mkdtemp(prefix="steward-cli-machines-"))
    state_dir = short_state_dir("st-")
    config = state_dir / "steward.yaml"
    config.write_text(
        f"machines_dir: {machines_dir}\nstate_dir: {state_dir}\n"
        "log:\n  format: json\n  level: info\nmetrics:\n  listen: 127.0.0.1:0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEWARD_", "PYTHON"))}
    daemon = Daemon(machines_dir, state_dir, state_dir / "daemon.log")
    api = Api(state_dir / "steward.sock")
    commands = {
        "bare": [python, "-I", "-c", "pass"],
        "version": [*steward, "version"],
        "status": [*steward, "status", "--config", str(config)],
        "status-json": [*steward, "status", "--json", "--config", str(config)],
        "status-socket": [*steward, "status", "--socket", str(state_dir / "steward.sock")],
        "validate": [*steward, "validate", str(REPO_DIR / "machines")],
        "version-editable": [sys.executable, "-m", "steward", "version"],
    }
    dev_env = {**env, "PYTHONPATH": str(REPO_DIR)}
    try:
        write_machines(machines_dir, MACHINES, INTERVAL)
        daemon.start()

        def all_listed() -> bool | None:
            status = api.get_ok("/v1/status")
            return True if status and len(status["machines"]) >= MACHINES else None

        wait_for(daemon, all_listed, READY_TIMEOUT, 0.1, f"status listed {MACHINES} machines")
        for argv in commands.values():  # warm the page cache and write any missing .pyc
            subprocess.run([a for a in argv if a != "-B"], capture_output=True, env=dev_env)
        print(f"{args.rounds} rounds of {len(commands)} commands", flush=True)
        for _ in range(args.rounds):
            for name, argv in commands.items():
                figures.add(name, run_measured(argv, dev_env if "editable" in name else env))
        for name, argv in commands.items():
            rss = peak_rss_kib(argv, dev_env if "editable" in name else env)
            if rss is not None:
                figures.rss_kib[name] = rss
        return figures
    finally:
        api.close()
        daemon.close()
        kept = f"machines {machines_dir}, state, config and log {state_dir}"
        keep_or_remove(args.keep, kept, machines_dir, state_dir)


def section(figures: Figures) -> str:
    return results_section(
        f"cli_speed: {figures.rounds} rounds",
        figures.lines(),
        "each command a new process (`python -I -B -m steward`, packaged layout, no editable "
        "finder), wall from spawn to exit, medians; bare interpreter and commands alternate "
        f"in every round; status against a daemon with {MACHINES} machines (timer + exec)",
        commit_note=f"; load average at start: {figures.loadavg}",
        footer="\n".join(f"`{line}`" for line in figures.summaries()),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(figures: Figures) -> None:
        report_figures(
            figures.lines(), lambda: section(figures), figures.summaries(), no_record=args.no_record
        )

    return run_main("cli_speed", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
