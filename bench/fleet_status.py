#!/usr/bin/env python3
"""fleet-status: ``steward fleet status`` on a fleet bucket with 10,000 node x machine keys.

A local ``nats-server -js`` holds a fleet bucket filled as 1,000 nodes with 10 machines each
would fill it (one node key and ten machine keys a node, each machine value with its last
transition and cause, five recent transitions and two watchers, as daemons write them; plus a
graph key per machine, which the table never reads). Timed, round after round: the whole
command as an operator types it (``steward fleet status`` and ``--json``: interpreter start,
imports, connect, both KV watches, the table), beside ``python3 -I -c pass`` in the same run;
and in this process, the ``FleetFeed.load()`` alone.

Target (issue 16): well under a second for 10,000 keys: the command's p50 ≤ 1 s.

    .venv/bin/python bench/fleet_status.py --no-record           # a look
    .venv/bin/python bench/fleet_status.py                       # appended to RESULTS.md
    .venv/bin/python bench/fleet_status.py --quick --no-record   # smoke, ~10 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from benchlib import (
    BenchError,
    NatsServer,
    add_output_args,
    keep_or_remove,
    loadavg,
    ms,
    percentile,
    positive_int,
    report_figures,
    results_section,
    run_main,
    summary_line,
)

from steward.fleet.feed import FleetFeed, open_bucket
from steward.fleet.state import DEFAULT_BUCKET, graph_key, machine_key, node_key

TARGET = 1.0  # seconds, p50 of the whole command
STATES = ("running", "degraded", "maintenance", "stopped")


@dataclass
class Results:
    nodes: int
    machines: int
    keys: int = 0
    fill: float = 0.0
    command: list[float] = field(default_factory=list)
    command_json: list[float] = field(default_factory=list)
    python: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    rows: int = 0


def machine_doc(node: str, machine: str, i: int, now: float) -> dict[str, object]:
    state = STATES[i % len(STATES)]
    cause = {
        "kind": "watcher",
        "text": "watcher check",
        "watcher": "check",
        "watcher_type": "exec",
        "outcome": "success",
        "detail": "exit code 0",
        "result": {"exit_code": 0, "command": "/usr/local/bin/check-service --quiet"},
    }
    recent = [
        {
            "seq": 40 + k,
            "at": now - 600 * (5 - k),
            "transition": "recover" if k % 2 else "degrade",
            "from_state": "degraded",
            "to_state": "running",
            "cause": "watcher check",
        }
        for k in range(5)
    ]
    return {
        "kind": "machine",
        "node": node,
        "machine": machine,
        "version": "1.4.2",
        "state": state,
        "since": now - 600,
        "seq": 44,
        "instance": f"{i:032x}",
        "last": {
            "seq": 44,
            "at": now - 600,
            "transition": "recover",
            "from_state": "degraded",
            "to_state": state,
            "version": "1.4.2",
            "cause": cause,
        },
        "recent": recent,
        "watchers": {
            "check": {"type": "exec", "outcome": "success", "detail": "exit code 0"},
            "every_5m": {"type": "timer", "outcome": "success", "detail": "timer expired"},
        },
        "updated": now,
    }


async def fill(url: str, nodes: int, machines: int) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.create_key_value(bucket=DEFAULT_BUCKET, history=1)
        prefix = f"$KV.{DEFAULT_BUCKET}."
        now = time.time()
        keys = 0
        for n in range(nodes):
            node = f"node{n:05d}.example.com"
            doc = {
                "kind": "node",
                "node": node,
                "steward_version": "0.1.0",
                "started": now - 86400,
                "heartbeat": now,
                "interval": 30.0,
                "machines": machines,
                "states": {"running": machines},
            }
            await nc.publish(prefix + node_key(node), json.dumps(doc).encode())
            for m in range(machines):
                name = f"service{m:02d}"
                body = json.dumps(machine_doc(node, name, n * machines + m, now)).encode()
                await nc.publish(prefix + machine_key(node, name), body)
                graph = {"kind": "graph", "node": node, "machine": name, "states": list(STATES)}
                await nc.publish(prefix + graph_key(node, name), json.dumps(graph).encode())
                keys += 2
            keys += 1
            if n % 100 == 99:
                await nc.flush()
        await nc.flush()
        deadline = time.monotonic() + 30
        while True:  # core publishes: the stream stores them a little after the flush
            info = await js.stream_info(f"KV_{DEFAULT_BUCKET}")
            if info.state.messages == keys:
                return keys
            if time.monotonic() > deadline:
                raise BenchError(f"the bucket holds {info.state.messages} keys, {keys} were put")
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def load_once(url: str) -> tuple[float, int]:
    nc = await nats.connect(url)
    try:
        started = time.perf_counter()
        feed = FleetFeed(await open_bucket(nc.jetstream(), DEFAULT_BUCKET), nc.jetstream())
        try:
            view = await feed.load()
        finally:
            await feed.close()
        return time.perf_counter() - started, len(view.rows(time.time()))
    finally:
        await nc.close()


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv[:4])}…: {result.stderr.strip()}")
    return elapsed


def run_bench(args: argparse.Namespace) -> Results:
    r = Results(args.nodes, args.machines)
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-status-"))
    server = NatsServer(work)
    try:
        server.start()
        started = time.perf_counter()
        r.keys = asyncio.run(fill(server.url, args.nodes, args.machines))
        r.fill = time.perf_counter() - started
        status = [sys.executable, "-m", "steward", "fleet", "status", "--nats", server.url]
        for i in range(args.rounds):
            r.python.append(timed([sys.executable, "-I", "-c", "pass"]))
            r.command.append(timed(status))
            r.command_json.append(timed([*status, "--json"]))
            elapsed, r.rows = asyncio.run(load_once(server.url))
            r.load.append(elapsed)
            print(
                f"round {i + 1}/{args.rounds}: status {ms(r.command[-1])}, --json "
                f"{ms(r.command_json[-1])}, load() {ms(elapsed)}",
                flush=True,
            )
        if r.rows != args.nodes * args.machines:
            raise BenchError(f"the table has {r.rows} rows, expected {args.nodes * args.machines}")
    finally:
        server.close()
        keep_or_remove(args.keep, str(work), work)
    return r


def summary(r: Results) -> list[str]:
    p50 = percentile(r.command, 50)
    return [
        summary_line(
            "fleet-status",
            f"p50 {ms(p50)} p99 {ms(percentile(r.command, 99))} "
            f"({r.nodes * r.machines:,} machine keys + {r.nodes:,} node keys)",
            f"p50 ≤ {ms(TARGET)}",
            f"{p50 / TARGET:.2f}",
            p50 <= TARGET,
        )
    ]


def lines(r: Results) -> list[tuple[str, str]]:
    def p(values: list[float]) -> str:
        return " / ".join(ms(percentile(values, q)) for q in (50, 99))

    return [
        ("nodes x machines (rows)", f"{r.nodes:,} x {r.machines} ({r.rows:,})"),
        ("keys in the bucket (with graphs)", f"{r.keys:,} (filled in {r.fill:.1f} s)"),
        ("`steward fleet status` p50 / p99", p(r.command)),
        ("`steward fleet status --json` p50 / p99", p(r.command_json)),
        ("FleetFeed.load() in process p50 / p99", p(r.load)),
        ("`python3 -I -c pass` p50 (same run)", ms(percentile(r.python, 50))),
        ("target p50 ≤ 1 s", "PASS" if percentile(r.command, 50) <= TARGET else "MISS"),
    ]


def section(r: Results) -> str:
    return results_section(
        f"fleet_status: `steward fleet status` on {r.nodes * r.machines:,} machine keys",
        lines(r),
        "a local `nats-server -js`; the fleet bucket filled as daemons fill it (a node key, "
        "machine keys with last transition, cause, recent transitions and watchers, graph keys); "
        "the whole command timed as a subprocess, round after round.",
        headline=["`steward fleet status` p50 / p99"],
        machine_note=f"; load average at the end {loadavg()}",
        footer="\n".join(f"`{line}`  " for line in summary(r)),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="steward fleet status on a large bucket.")
    parser.add_argument("--nodes", type=positive_int, default=1000, help="nodes (1000)")
    parser.add_argument("--machines", type=positive_int, default=10, help="per node (10)")
    parser.add_argument("--rounds", type=positive_int, default=10, help="rounds (10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 x 10, 2 rounds")
    add_output_args(parser, "keep the work dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.rounds = 100, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(r: Results) -> None:
        report_figures(lines(r), lambda: section(r), summary(r), no_record=args.no_record)

    return run_main("fleet_status", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
