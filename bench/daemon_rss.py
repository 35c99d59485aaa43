#!/usr/bin/env python3
"""Daemon memory: the RSS of ``steward run`` with 100 small machines, for edge boxes.

Each machine is a load machine (``write_machines`` in benchlib: an exec watcher running
``/bin/true`` every ``--interval`` and a timer, two transitions per interval), metrics on (a
free port), started the packaged way (``python -I -B -m steward run``, in the venv that
``cli_speed.py`` makes: no editable finder). Once status lists every machine, the daemon runs
for ``--settle`` (10 s: every watcher has run and transitioned), then its RSS is sampled for
``--window`` (10 s); the figure is the highest sample (``VmRSS``), beside the kernel's peak
(``VmHWM``, which includes the start).

Two rows: no NATS (target ≤ 32 MiB) and publishing into JetStream on a local
``nats-server -js`` (``--nats-stream``; target ≤ 40 MiB). MiB = 2^20 bytes.

    .venv/bin/python bench/daemon_rss.py --quick --no-record   # smoke: 3 s windows
    .venv/bin/python bench/daemon_rss.py                       # recorded

Prints ``daemon-rss: …`` and ``daemon-rss-jetstream: …`` lines (``… target: … ratio: …
PASS|MISS``); exits 0 either way (1 only if the benchmark itself could not run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    Api,
    Daemon,
    NatsServer,
    add_output_args,
    duration_arg,
    keep_or_remove,
    loadavg,
    proc_sample,
    report_figures,
    results_section,
    run_main,
    short_state_dir,
    summary_line,
    wait_for,
    write_machines,
)
from cli_speed import packaged_python

MACHINES = 100
READY_TIMEOUT = 120.0
TARGETS_MIB = {"daemon-rss": 32.0, "daemon-rss-jetstream": 40.0}
STREAM = "STEWARD_RSS"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="RSS of the daemon with 100 machines.")
    parser.add_argument("--interval", type=duration_arg, default=5.0, help="exec interval (5s)")
    parser.add_argument("--settle", type=duration_arg, default=None, help="after ready (10s)")
    parser.add_argument("--window", type=duration_arg, default=None, help="sampling (10s)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s settle and window")
    add_output_args(parser, "keep the machines and state dirs (and the daemon's log)")
    args = parser.parse_args(argv)
    if args.settle is None:
        args.settle = 3.0 if args.quick else 10.0
    if args.window is None:
        args.window = 3.0 if args.quick else 10.0
    return args


@dataclass
class Memory:
    name: str
    rss_kib: int  # the highest VmRSS sample in the window
    hwm_kib: int  # VmHWM at the end
    threads: int

    def summary(self) -> str:
        mib = self.rss_kib / 1024
        target = TARGETS_MIB[self.name]
        nats = "JetStream" if "jetstream" in self.name else "no NATS"
        return summary_line(
            self.name,
            f"{mib:.1f} MiB RSS ({MACHINES} machines, {nats}, metrics on; VmHWM "
            f"{self.hwm_kib / 1024:.1f} MiB)",
            f"≤ {target:g} MiB",
            f"{mib / target:.2f}",
            mib <= target,
        )


def measure(args: argparse.Namespace, python: Path, nats_url: str | None) -> Memory:
    name = "daemon-rss-jetstream" if nats_url else "daemon-rss"
    machines_dir = Path(tempfile.mkdtemp(prefix="steward-rss-machines-"))
    state_dir = short_state_dir("st-")
    extra = ["--metrics-listen", "127.0.0.1:0", "--log-level", "warning"]
    if nats_url:
        extra += ["--nats-server", nats_url, "--nats-stream", STREAM]
    daemon = Daemon(
        machines_dir, state_dir, state_dir / "daemon.log", extra_args=extra, python=python
    )
    api = Api(state_dir / "steward.sock")
    try:
        write_machines(machines_dir, MACHINES, args.interval)
        daemon.start()

        def all_listed() -> bool | None:
            status = api.get_ok("/v1/status")
            return True if status and len(status["machines"]) >= MACHINES else None

        wait_for(daemon, all_listed, READY_TIMEOUT, 0.1, f"status listed {MACHINES} machines")
        api.close()  # the daemon keeps no client connection while it is sampled
        time.sleep(args.settle)
        peak, threads, hwm = 0, 0, 0
        end = time.monotonic() + args.window
        while time.monotonic() < end:
            sample = proc_sample(daemon.pid)
            if sample is None:
                raise daemon.failed("the daemon vanished")
            peak, threads, hwm = max(peak, sample.rss_kib), sample.threads, sample.hwm_kib
            time.sleep(0.2)
        return Memory(name, peak, hwm, threads)
    finally:
        api.close()
        daemon.stop()
        keep_or_remove(args.keep, f"{machines_dir}, {state_dir}", machines_dir, state_dir)


@dataclass
class Figures:
    runs: list[Memory]
    loadavg: str

    def lines(self) -> list[tuple[str, str]]:
        return [
            (
                f"{m.name}: RSS (max sample) / VmHWM / threads",
                f"{m.rss_kib / 1024:.1f} MiB / {m.hwm_kib / 1024:.1f} MiB / {m.threads}",
            )
            for m in self.runs
        ]

    def summaries(self) -> list[str]:
        return [m.summary() for m in self.runs]


def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures([], loadavg())
    python = packaged_python()
    figures.runs.append(measure(args, python, None))
    workdir = Path(tempfile.mkdtemp(prefix="steward-rss-nats-"))
    server = NatsServer(workdir)
    try:
        server.start()
        figures.runs.append(measure(args, python, server.url))
    finally:
        server.close()
        keep_or_remove(args.keep, str(workdir), workdir)
    return figures


def section(figures: Figures, args: argparse.Namespace) -> str:
    return results_section(
        f"daemon_rss: {MACHINES} machines",
        figures.lines(),
        f"{MACHINES} machines (exec `/bin/true` every {args.interval:g} s + a timer), metrics on, "
        "packaged way (`python -I -B -m steward run`); RSS = the highest VmRSS sample over "
        f"{args.window:g} s, {args.settle:g} s after status listed all",
        commit_note=f"; load average at start: {figures.loadavg}",
        footer="\n".join(f"`{line}`" for line in figures.summaries()),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(figures: Figures) -> None:
        report_figures(
            figures.lines(),
            lambda: section(figures, args),
            figures.summaries(),
            no_record=args.no_record,
        )

    return run_main("daemon_rss", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
