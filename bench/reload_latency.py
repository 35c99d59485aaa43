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

What to expect: watchfiles ends a batch of events when one look, ``quiet`` (50 ms) after the
previous, finds nothing new, so a drop waits one to two quiet windows; the rescan that follows
re-reads the directory but parses only the new file (``SpecCache``), a few milliseconds.

    .venv/bin/python bench/reload_latency.py --no-record      # a look, nothing recorded
    .venv/bin/python bench/reload_latency.py                  # 50 drops, appended to RESULTS.md

Prints ``reload: p50 … p99 … target p99 ≤ 500ms PASS|MISS`` and exits 0 either way (1 only
if the benchmark itself could not run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from load_machines import (
    RESULTS_FILE,
    RESULTS_HEADER,
    BenchError,
    Daemon,
    cpu_model,
    positive_int,
    write_machines,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
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


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 to the daemon's control socket."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        super().__init__("steward", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.socket_path))
        self.sock = sock


class Api:
    """GETs on one kept-alive connection, reconnecting after any error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: UnixHTTPConnection | None = None

    def get(self, url: str) -> tuple[int, Any] | None:
        """(status, JSON body), or None while the daemon does not answer."""
        for _ in range(2):
            if self._conn is None:
                self._conn = UnixHTTPConnection(self.path)
            try:
                self._conn.request("GET", url)
                response = self._conn.getresponse()
                body = response.read()
                return response.status, json.loads(body) if body else None
            except (OSError, http.client.HTTPException, ValueError):
                self._conn.close()
                self._conn = None
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


@dataclass
class Figures:
    drops: int
    background: int
    layout: str
    ready_seconds: float = 0.0
    latencies: tuple[float, ...] = ()

    def quantile(self, q: int) -> float:
        """The q-th percentile (inclusive method: p100 is the maximum)."""
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]

    @property
    def passed(self) -> bool:
        return self.quantile(99) <= TARGET_P99

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        return (
            f"reload: p50 {ms(self.quantile(50))} p99 {ms(self.quantile(99))} "
            f"({len(self.latencies)} drops, {self.background} machines running, "
            f"layout {self.layout}) target p99 ≤ {ms(TARGET_P99)} {verdict}"
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
            ("min / mean / max", " / ".join(ms(f(self.latencies)) for f in (min, _mean, max))),
            ("target p99 ≤ 500ms", "PASS" if self.passed else "MISS"),
        ]


def _mean(values: tuple[float, ...]) -> float:
    return statistics.fmean(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


def git_commit() -> str:
    """HEAD's commit, read from .git without running git."""
    git = REPO_DIR / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head.removeprefix("ref: ")
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip()[:7]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0][:7]
    except OSError:
        pass
    return "unknown"


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
    deadline = time.monotonic() + DROP_TIMEOUT
    while time.monotonic() < deadline:
        answer = api.get(f"/v1/machines/{name}")
        if answer is not None and answer[0] == 200:
            return time.monotonic()
        if not daemon.alive():
            raise daemon.failed(f"the daemon exited while {name} was being loaded")
        time.sleep(POLL)
    raise daemon.failed(f"{name} was not running {DROP_TIMEOUT:.0f} s after it landed")


def wait_ready(api: Api, daemon: Daemon, count: int, spawned: float) -> float:
    deadline = spawned + READY_TIMEOUT
    while time.monotonic() < deadline:
        answer = api.get("/v1/status")
        if answer is not None and answer[0] == 200 and len(answer[1]["machines"]) >= count:
            return time.monotonic() - spawned
        if not daemon.alive():
            raise daemon.failed("the daemon exited while starting")
        time.sleep(0.05)
    raise daemon.failed(f"the daemon did not list {count} machines in {READY_TIMEOUT:.0f} s")


def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.drops, args.background, args.layout)
    machines_dir = Path(tempfile.mkdtemp(prefix="steward-reload-machines-"))
    state_dir = Path(tempfile.mkdtemp(prefix="sr-", dir="/tmp"))  # socket path < 108 bytes
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
        if args.keep:
            print(f"kept: machines {machines_dir}, state and log {state_dir}")
        else:
            shutil.rmtree(machines_dir, ignore_errors=True)
            shutil.rmtree(state_dir, ignore_errors=True)


# the record ------------------------------------------------------------------------------------
def record(figures: Figures, path: Path) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(f"| {name} | {value} |" for name, value in figures.lines())
    section = f"""
## reload_latency: {figures.drops} drops, {figures.background} machines running ({now})

- machine: {os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}, \
{platform.system()} {platform.release()}
- commit: `{git_commit()}`
- each drop: a machine file written under a hidden name and renamed into the machines dir \
(layout `{figures.layout}`), timed until `GET /v1/machines/<name>` answers 200; no SIGHUP

| figure | value |
|---|---|
{rows}

`{figures.summary()}`
"""
    if not path.exists():
        path.write_text(RESULTS_HEADER)
    with path.open("a") as f:
        f.write(section)


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
        "--no-record", action="store_true", help=f"do not append to {RESULTS_FILE.name}"
    )
    parser.add_argument("--keep", action="store_true", help="keep the machines and state dirs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        figures = run_bench(args)
    except BenchError as exc:
        print(f"reload_latency: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    for name, value in figures.lines():
        print(f"{name}: {value}")
    if not args.no_record:
        record(figures, RESULTS_FILE)
        print(f"recorded in {RESULTS_FILE}")
    print(figures.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
