#!/usr/bin/env python3
"""CPU per committed transition: what the daemon spends on one transition, all of it.

The real daemon runs ``--machines`` (100) machines that do nothing but flip: two states, each
left by a timer of ``--period`` (200 ms) (``write_machines(..., timers_only=True)`` in
benchlib), so about ``machines / period`` transitions a second and no process spawned. Each
transition is what a transition always is: the timer's result handed to the machine's queue,
the destination looked up, the CloudEvent built, the state, ``seq``, history row (and, with
NATS, the event in the outbox) committed to SQLite in one transaction, group-committed with
``synchronous=FULL`` (fsync'ed), the log line written (JSON, level info, to a file), the
watchers reconciled (the timer of the new state started), the metrics and the node told.

Two sides, alternating for ``--rounds`` (3) rounds, each a fresh daemon and state dir:

- **no NATS** (the target): nothing is configured, so the event is built and delivered to
  local consumers only (``docs/events.md``: with no NATS nothing would read an outbox).
- **JetStream** (information): ``--nats-server`` and ``--nats-stream`` on a local
  ``nats-server -js`` (the venv's): the event is also written to the outbox in the same
  transaction, published, acked and deleted. nats-server's own CPU is not counted.

Once every machine is listed and ``--settle`` (2 s) more has passed, a ``--duration`` (20 s)
window: daemon CPU = utime + stime of the daemon (every thread: the event loop, the SQLite
thread, the rest) from /proc/<pid>/stat at both ends; transitions committed = the growth of
the sum of the machines' ``seq`` (control API, ``GET /v1/status``, at both ends). CPU per
transition = the first over the second; the window's transitions/s is shown too.

Target: ≤ 0.3 ms of daemon CPU per transition without NATS. Prints ``transition-cpu: …
target: … ratio: … PASS|MISS``; the JetStream figure is a headline figure without a target.
Exits 0 either way (1 only if the benchmark itself could not run).

    .venv/bin/python bench/transition_cpu.py --quick --no-record   # smoke: 20 machines, ~30 s
    .venv/bin/python bench/transition_cpu.py                       # 100 machines, 3 rounds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    CLK_TCK,
    Api,
    Daemon,
    NatsServer,
    add_output_args,
    duration_arg,
    keep_or_remove,
    loadavg,
    ms,
    positive_int,
    proc_sample,
    report_figures,
    results_section,
    run_main,
    short_state_dir,
    summary_line,
    write_machines,
)

TARGET_MS = 0.3  # daemon CPU per committed transition, no NATS
READY_TIMEOUT = 60.0
STREAM = "STEWARD_BENCH_TRANSITIONS"
SIDES = ("no NATS", "JetStream")
HEADLINE = "JetStream (information): daemon CPU per transition"


# arguments -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Daemon CPU per committed transition: machines flipping on fast timers, "
        "without NATS and with JetStream, alternating rounds."
    )
    parser.add_argument("--machines", type=positive_int, default=None, help="machines (100)")
    parser.add_argument(
        "--period", type=duration_arg, default=0.2, help="each state's timer (200ms)"
    )
    parser.add_argument(
        "--duration", type=duration_arg, default=None, help="window per side and round (20s)"
    )
    parser.add_argument(
        "--settle", type=duration_arg, default=2.0, help="after all machines run (2s)"
    )
    parser.add_argument("--rounds", type=positive_int, default=None, help="rounds (3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 machines, 5 s, 1 round")
    add_output_args(parser, "keep the machines dir, state dirs, logs and nats-server's dir")
    args = parser.parse_args(argv)
    if args.machines is None:
        args.machines = 20 if args.quick else 100
    if args.duration is None:
        args.duration = 5.0 if args.quick else 20.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    return args


# one window ------------------------------------------------------------------------------------
@dataclass
class Window:
    side: str
    seconds: float = 0.0
    ticks: int = 0  # daemon utime + stime in the window
    transitions: int = 0  # committed in the window (growth of the seq sum)
    rss_kib: int = 0
    threads: int = 0

    @property
    def ms_per_transition(self) -> float:
        return self.ticks / CLK_TCK * 1000 / self.transitions if self.transitions else float("nan")

    @property
    def rate(self) -> float:
        return self.transitions / self.seconds if self.seconds else 0.0

    @property
    def cpu_pct(self) -> float:
        return self.ticks / CLK_TCK / self.seconds * 100 if self.seconds else 0.0


def seq_sum(status: dict[str, Any]) -> int:
    return sum(int(m["seq"]) for m in status["machines"])


def status_of(daemon: Daemon, api: Api) -> dict[str, Any]:
    status: dict[str, Any] | None = api.get_ok("/v1/status")
    if status is None:
        raise daemon.failed("the control API did not answer")
    return status


def ready(status: dict[str, Any] | None, count: int, *, nats: bool) -> bool:
    """Every machine listed (and, with NATS, the connection up)."""
    if status is None or len(status["machines"]) < count:
        return False
    return not nats or bool(status["events"]["nats"]["connected"])


def measure(
    side: str, machines_dir: Path, count: int, args: argparse.Namespace, nats_url: str | None
) -> Window:
    """A fresh daemon on ``machines_dir``: ready, settle, then the window."""
    state_dir = short_state_dir("st-")
    (state_dir / "steward.yaml").write_text("")
    extra = ["--metrics-listen", "127.0.0.1:0"]  # never the shared default port
    if nats_url is not None:
        extra += ["--nats-server", nats_url, "--nats-stream", STREAM]
    daemon = Daemon(
        machines_dir,
        state_dir,
        state_dir / "daemon.log",
        extra_args=extra,
        extra_env={"STEWARD_CONFIG": str(state_dir / "steward.yaml")},
    )
    api = Api(state_dir / "steward.sock")
    window = Window(side)
    try:
        daemon.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if not daemon.alive():
                raise daemon.failed("the daemon exited before all machines ran")
            if ready(api.get_ok("/v1/status"), count, nats=nats_url is not None):
                break
            if time.monotonic() > deadline:
                raise daemon.failed(f"{count} machines not running after {READY_TIMEOUT:g} s")
            time.sleep(0.1)
        time.sleep(args.settle)
        first, before = status_of(daemon, api), proc_sample(daemon.pid)
        time.sleep(args.duration)
        after, last = proc_sample(daemon.pid), status_of(daemon, api)
        if before is None or after is None:
            raise daemon.failed("the daemon exited during its window")
        window.seconds = after.at - before.at
        window.ticks = after.self_ticks - before.self_ticks
        window.transitions = seq_sum(last) - seq_sum(first)
        window.rss_kib, window.threads = after.rss_kib, after.threads
        _, code = daemon.stop()
        if code != 0:
            raise daemon.failed(f"the daemon exited with {code} at stop")
        return window
    finally:
        api.close()
        daemon.close()
        keep_or_remove(args.keep, f"{side} state dir and log {state_dir}", state_dir)


# figures ---------------------------------------------------------------------------------------
@dataclass
class Figures:
    machines: int
    period: float
    rounds: int
    loadavg: str = "?"
    runs: dict[str, list[Window]] = field(default_factory=lambda: {s: [] for s in SIDES})

    def med(self, side: str, attr: str) -> float:
        values = [getattr(w, attr) for w in self.runs[side]]
        return statistics.median(values) if values else float("nan")

    @property
    def cpu_ms(self) -> float:
        return self.med("no NATS", "ms_per_transition")

    @property
    def passed(self) -> bool:
        return self.cpu_ms <= TARGET_MS

    def side_value(self, side: str) -> str:
        per_round = " / ".join(f"{w.ms_per_transition:.3f}" for w in self.runs[side])
        return (
            f"{self.med(side, 'ms_per_transition'):.3f} ms ({self.med(side, 'rate'):.0f} "
            f"transitions/s, daemon CPU {self.med(side, 'cpu_pct'):.1f} % of one core); "
            f"rounds {per_round}"
        )

    def lines(self) -> list[tuple[str, str]]:
        rows = [
            (
                "rounds",
                f"{self.rounds}, alternating no NATS / JetStream, a fresh daemon each",
            ),
            (
                "machines",
                f"{self.machines}, each state left by a {ms(self.period)} timer "
                f"(~{self.machines / self.period:.0f} transitions/s offered)",
            ),
            ("no NATS: daemon CPU per transition", self.side_value("no NATS")),
        ]
        if self.runs["JetStream"]:
            rows.append((HEADLINE, self.side_value("JetStream")))
        for side in SIDES:
            if self.runs[side]:
                rows.append(
                    (
                        f"{side}: RSS at the end / threads",
                        f"{self.med(side, 'rss_kib') / 1024:.1f} MiB / "
                        f"{self.med(side, 'threads'):.0f}",
                    )
                )
        return rows

    def summary(self) -> str:
        return summary_line(
            "transition-cpu",
            f"{self.cpu_ms:.3f} ms of daemon CPU per committed transition "
            f"({self.med('no NATS', 'rate'):.0f}/s, {self.machines} machines, no NATS)",
            f"≤ {TARGET_MS:g} ms",
            f"{self.cpu_ms / TARGET_MS:.2f}",
            self.passed,
        )


# the run ---------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.machines, args.period, args.rounds, loadavg=loadavg())
    workdir = Path(tempfile.mkdtemp(prefix="steward-transition-bench-"))
    server = NatsServer(workdir)
    try:
        machines_dir = workdir / "machines"
        machines_dir.mkdir()
        write_machines(machines_dir, args.machines, args.period, timers_only=True)
        server.start()
        for r in range(1, args.rounds + 1):
            for side, url in (("no NATS", None), ("JetStream", server.url)):
                print(f"round {r}/{args.rounds}: {side}", flush=True)
                window = measure(side, machines_dir, args.machines, args, url)
                figures.runs[side].append(window)
                print(
                    f"  {window.ms_per_transition:.3f} ms/transition, {window.rate:.0f}/s, "
                    f"CPU {window.cpu_pct:.1f} %",
                    flush=True,
                )
        return figures
    finally:
        server.close()
        keep_or_remove(args.keep, str(workdir), workdir)


def section(figures: Figures) -> str:
    return results_section(
        f"transition_cpu: {figures.machines} machines flipping on {ms(figures.period)} timers, "
        f"no NATS and JetStream, {figures.rounds} rounds",
        figures.lines(),
        "daemon CPU (utime+stime, every thread, /proc) over a steady window / transitions "
        "committed in it (growth of the machines' seq sum, control API); each transition "
        "fsync'ed (group commit), its CloudEvent built, its log line written",
        headline=(HEADLINE,) if figures.runs["JetStream"] else (),
        commit_note=f"; load average at start: {figures.loadavg}",
        footer=f"`{figures.summary()}`",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.duration < 1:
        raise SystemExit("--duration must be at least 1s")

    def report(figures: Figures) -> None:
        print(f"--- load average at start {figures.loadavg}")
        report_figures(
            figures.lines(), lambda: section(figures), [figures.summary()], no_record=args.no_record
        )

    return run_main("transition_cpu", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
