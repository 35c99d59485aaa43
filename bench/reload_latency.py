#!/usr/bin/env python3
"""Reload latency: from a machine file landing in the machines dir to the machine running.

The real daemon runs on ``--background`` machines (the load benchmark's: an exec watcher every
5 s and a timer), so each rescan has real files to read and a busy loop to share. Then, one
at a time, ``--drops`` new machines land the way deployment tools write them: the file is
written under a hidden temporary name and renamed into place (``--layout file``: a bare
``<name>.yaml``; ``--layout dir``: a whole ``<name>/`` directory with its ``machine.yaml``).
The clock starts when the rename returns and stops when the control API
(``GET /v1/machines/<name>`` on the Unix socket, polled every 2 ms over one kept-alive
connection) first answers 200: the machine is running. No SIGHUP is ever sent.

What to expect: the watch (``steward/daemon/watch.py``, inotify read on the event loop) ends
a batch of events ``quiet`` (50 ms) after its last event, so a drop waits one quiet window
(watchfiles, before, took one to two); the rescan that follows re-reads the directory but
parses only the new file (``SpecCache``), a few milliseconds.

    .venv/bin/python bench/reload_latency.py --no-record      # a look, nothing recorded
    .venv/bin/python bench/reload_latency.py                  # 50 drops, appended to RESULTS.md

Prints ``reload: p50 … p99 … target: p99 ≤ 500ms ratio: … PASS|MISS`` and exits 0 either way (1 only
if the benchmark itself could not run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from benchlib import (
    Api,
    Daemon,
    add_output_args,
    keep_or_remove,
    latency_line,
    ms,
    percentile,
    positive_int,
    report_figures,
    results_section,
    run_main,
    short_state_dir,
    wait_for,
    write_machines,
)

TARGET_P99 = 0.5  # seconds
POLL = 0.002  # seconds between two looks at the API
DROP_TIMEOUT = 30.0  # seconds one drop may take before the benchmark gives up
READY_TIMEOUT = 300.0  # seconds for the daemon to run every background machine
BACKGROUND_INTERVAL = 5.0  # the background machines' exec interval

DROPPED = """\
name: {name}
version: "1.0.0"
initial_state: idle
description: reload benchmark drop {index}
transitions:
  - {{name: go, from: [idle], destination: busy}}
  - {{name: rest, from: [busy], destination: idle}}
watchers:
  - name: settle
    type: timer
    state_match: [busy]
    fail_transition: rest
    properties:
      timer: 1s
"""


@dataclass
class Figures:
    drops: int
    background: int
    layout: str
    ready_seconds: float = 0.0
    latencies: tuple[float, ...] = ()

    def quantile(self, q: int) -> float:
        """The q-th percentile (inclusive method: p100 is the maximum)."""
        return percentile(self.latencies, q)

    @property
    def passed(self) -> bool:
        return self.quantile(99) <= TARGET_P99

    def summary(self) -> str:
        return latency_line(
            "reload",
            self.latencies,
            TARGET_P99,
            f"{len(self.latencies)} drops, {self.background} machines running, "
            f"layout {self.layout}",
        )

    def lines(self) -> list[tuple[str, str]]:
        return [
            (
                "daemon ready (spawn -> all background machines listed)",
                f"{self.ready_seconds:.2f} s",
            ),
            ("p50", ms(self.quantile(50))),
            ("p90", ms(self.quantile(90))),
            ("p99", ms(self.quantile(99))),
            ("min / mean / max", " / ".join(ms(f(self.latencies)) for f in (min, fmean, max))),
            ("target p99 ≤ 500ms", "PASS" if self.passed else "MISS"),
        ]


# the benchmark ---------------------------------------------------------------------------------
def land(machines_dir: Path, name: str, index: int, layout: str) -> float:
    """Write a machine under a hidden name, rename it into place; the monotonic landing time."""
    text = DROPPED.format(name=name, index=index)
    if layout == "dir":
        staging = machines_dir / f".{name}.partial"
        staging.mkdir()
        (staging / "machine.yaml").write_text(text)
        staging.rename(machines_dir / name)
    else:
        staging = machines_dir / f".{name}.yaml.partial"
        staging.write_text(text)
        staging.rename(machines_dir / f"{name}.yaml")
    return time.monotonic()


def wait_running(api: Api, daemon: Daemon, name: str) -> float:
    """Poll the API until ``name`` runs; the monotonic time it was first seen."""

    def seen() -> float | None:
        return time.monotonic() if api.get_ok(f"/v1/machines/{name}") is not None else None

    return wait_for(daemon, seen, DROP_TIMEOUT, POLL, f"{name} was running")


def wait_ready(api: Api, daemon: Daemon, count: int, spawned: float) -> float:
    """Poll the API until it lists ``count`` machines; the seconds since ``spawned``."""

    def ready() -> float | None:
        status = api.get_ok("/v1/status")
        if status is not None and len(status["machines"]) >= count:
            return time.monotonic() - spawned
        return None

    return wait_for(daemon, ready, READY_TIMEOUT, 0.05, f"the daemon listed {count} machines")


def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.drops, args.background, args.layout)
    machines_dir = Path(tempfile.mkdtemp(prefix="steward-reload-machines-"))
    state_dir = short_state_dir("sr-")
    daemon = Daemon(machines_dir, state_dir, state_dir / "daemon.log")
    api = Api(state_dir / "steward.sock")
    try:
        write_machines(machines_dir, args.background, BACKGROUND_INTERVAL)
        print(f"daemon: {args.background} machines in {machines_dir}, state in {state_dir}")
        spawned = daemon.start()
        figures.ready_seconds = wait_ready(api, daemon, args.background, spawned)
        print(f"ready after {figures.ready_seconds:.2f} s; {args.drops} drops ({args.layout})")
        latencies = []
        for i in range(args.drops):
            name = f"drop{i:03d}"
            landed = land(machines_dir, name, i, args.layout)
            latencies.append(wait_running(api, daemon, name) - landed)
        figures.latencies = tuple(latencies)
        daemon.stop()
        return figures
    finally:
        api.close()
        daemon.close()
        kept = f"machines {machines_dir}, state and log {state_dir}"
        keep_or_remove(args.keep, kept, machines_dir, state_dir)


# the record ------------------------------------------------------------------------------------
def section(figures: Figures) -> str:
    return results_section(
        f"reload_latency: {figures.drops} drops, {figures.background} machines running",
        figures.lines(),
        "each drop: a machine file written under a hidden name and renamed into the machines "
        f"dir (layout `{figures.layout}`), timed until `GET /v1/machines/<name>` answers 200; "
        "no SIGHUP",
        footer=f"`{figures.summary()}`",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time from a machine file landing in the machines dir to the machine "
        "running, over many drops, with the real daemon.",
    )
    parser.add_argument("--drops", type=positive_int, default=50, help="machines to drop (50)")
    parser.add_argument(
        "--background",
        type=positive_int,
        default=100,
        help="machines already running, each with an exec watcher every 5 s (100)",
    )
    parser.add_argument(
        "--layout",
        choices=("file", "dir"),
        default="file",
        help="drop a bare <name>.yaml (file) or a <name>/machine.yaml directory (dir)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 5 drops, 10 machines running"
    )
    add_output_args(parser, "keep the machines and state dirs")
    args = parser.parse_args(argv)
    if args.quick:
        args.drops, args.background = min(args.drops, 5), min(args.background, 10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(figures: Figures) -> None:
        report_figures(
            figures.lines(),
            lambda: section(figures),
            [figures.summary()],
            no_record=args.no_record,
        )

    return run_main("reload_latency", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
