#!/usr/bin/env python3
"""fleet: a specification put into KV -> the machine it ships running on N daemons.

N daemons (in this process, each its own node name, machines dir and state dir) run the same
manager machine on a real ``nats-server -js``: a kv watcher follows the specification key in
watch mode, a plugins watcher installs what it lists, whose archive watcher fetches the
tarball from a JetStream object store. This process packs a new version of ``app`` with
``steward fleet pack``, uploads and puts it with ``steward fleet publish``, and measures, per
node, the time from just before the put until that node runs the new version (round after
round). Then the same rollout with every entry behind a governor of capacity 1: how long the
whole fleet takes when nodes update one at a time.

Target: ungoverned, put -> running p99 ≤ 2 s on every node (issue 15). The governed rollout has
no target: it is about N x (one node's install) plus the governor's retry waits.

    .venv/bin/python bench/fleet_rollout.py --no-record           # a look
    .venv/bin/python bench/fleet_rollout.py                       # appended to RESULTS.md
    .venv/bin/python bench/fleet_rollout.py --quick --no-record   # smoke, ~30 s

Prints ``fleet-rollout: … PASS|MISS`` and a ``fleet-governed-rollout: …`` line; exits 0 either
way (1 only if the benchmark itself could not run).
"""

from __future__ import annotations

import argparse
import asyncio
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
    latency_line,
    loadavg,
    ms,
    percentile,
    positive_int,
    report_figures,
    results_section,
    run_main,
)

from steward.broker.settings import NatsSettings
from steward.daemon.config import Config
from steward.daemon.server import Daemon

TARGET_P99 = 2.0
DEADLINE = 60.0

MANAGER = """\
name: manager
version: 1.0.0
initial_state: MANAGE
transitions:
  - {{name: pause, from: [MANAGE], destination: PAUSED}}
watchers:
  - name: specification
    type: kv
    state_match: [MANAGE]
    properties: {{bucket: MACHINES, key: spec, mode: watch, bucket_prefix: false}}
  - name: manage
    type: plugins
    state_match: [MANAGE]
    properties: {{data_item: spec, public_key: {public}, purge_unknown: true}}
"""

APP = """\
name: app
version: {version}
initial_state: running
transitions:
  - {{name: stop, from: [running], destination: stopped}}
"""


@dataclass
class Results:
    nodes: int
    latencies: list[float] = field(default_factory=list)  # per node per round, seconds
    rounds: list[float] = field(default_factory=list)  # the slowest node per round
    governed: float = float("nan")  # the governed rollout across all nodes


def steward(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "steward", *args], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise BenchError(f"steward {args[0]} {args[1]}: {result.stderr.strip()}")


def pack(work: Path, version: str, governor: str = "") -> Path:
    ship = work / f"ship-{version}"
    (ship / "app").mkdir(parents=True)
    (ship / "app" / "machine.yaml").write_text(APP.format(version=version))
    spec = work / f"spec-{version}.json"
    steward(
        *("fleet", "pack", str(ship), "--key", str(work / "keys" / "fleet.seed")),
        *("--source-url", "nats-object://ARCHIVES/", "--match", 'app=identity("^node")'),
        *(("--governor", f"app={governor}") if governor else ()),
        *("-o", str(spec)),
    )
    return spec


def publish(server: NatsServer, spec: Path) -> float:
    started = time.monotonic()
    steward(
        *("fleet", "publish", str(spec), "--nats", server.url, "--bucket", "MACHINES"),
        *("--key", "spec", "--object-store", "ARCHIVES", "--archives", str(spec.parent)),
    )
    return started


async def running(daemons: list[Daemon], version: str, since: float) -> list[float]:
    """Per daemon, seconds from ``since`` until it runs app ``version``."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + DEADLINE
    while len(seen) < len(daemons):
        if time.monotonic() > deadline:
            raise BenchError(f"app {version} not running on every node within {DEADLINE:g}s")
        for i, d in enumerate(daemons):
            m = d.node.machines.get("app")
            if i not in seen and m is not None and m.spec.version == version:
                seen[i] = time.monotonic() - since
        await asyncio.sleep(0.005)
    return [seen[i] for i in range(len(daemons))]


async def setup_stores(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.create_key_value(bucket="MACHINES")
        await js.create_object_store("ARCHIVES")
    finally:
        await nc.close()


async def run_bench(args: argparse.Namespace) -> Results:
    work = Path(tempfile.mkdtemp(prefix="flb-", dir="/tmp"))
    server = NatsServer(work)
    results = Results(args.nodes)
    daemons: list[Daemon] = []
    tasks: list[asyncio.Future[object]] = []
    try:
        server.start()
        await setup_stores(server.url)
        steward("fleet", "keygen", str(work / "keys"))
        public = (work / "keys" / "fleet.public").read_text().strip()
        for i in range(args.nodes):
            machines = work / f"node{i}" / "machines"
            (machines / "manager").mkdir(parents=True)
            (machines / "manager" / "machine.yaml").write_text(MANAGER.format(public=public))
            daemons.append(
                Daemon(
                    Config(
                        node=f"node{i}",
                        machines_dir=machines,
                        state_dir=work / f"node{i}" / "state",
                        metrics_listen=None,
                        nats=NatsSettings(servers=(server.url,)),
                        log_level="warning",
                    )
                )
            )
        tasks = [asyncio.ensure_future(d.serve()) for d in daemons]
        deadline = time.monotonic() + DEADLINE
        while not all("manager" in d.node.machines for d in daemons):
            if time.monotonic() > deadline:
                raise BenchError("the managers did not start")
            await asyncio.sleep(0.02)
        for r in range(args.rounds):
            version = f"1.0.{r}"
            spec = pack(work, version)
            took = await running(daemons, version, publish(server, spec))
            results.latencies += took
            results.rounds.append(max(took))
            print(f"  round {r + 1}/{args.rounds}: slowest node {ms(max(took))}", flush=True)
        steward("governor", "add", "bench_rollout", "1", "1m", "--nats", server.url)
        spec = pack(work, "2.0.0", governor="bench_rollout")
        results.governed = max(await running(daemons, "2.0.0", publish(server, spec)))
        print(f"  governed rollout: {results.governed:.2f}s", flush=True)
        return results
    finally:
        for d in daemons:
            d.request_exit()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        server.close()
        keep_or_remove(args.keep, str(work), work)


def summary(r: Results) -> list[str]:
    return [
        latency_line(
            "fleet-rollout",
            r.latencies,
            TARGET_P99,
            f"spec put -> running, {r.nodes} daemons x {len(r.rounds)} rounds, kv watch mode",
        ),
        f"fleet-governed-rollout: {r.governed:.2f}s for {r.nodes} daemons, governor capacity 1 "
        f"({r.governed / r.nodes:.2f}s a node) (no target: one node at a time)",
    ]


def lines(r: Results) -> list[tuple[str, str]]:
    p = [percentile(r.latencies, q) for q in (50, 90, 99)]
    return [
        ("daemons x rounds", f"{r.nodes} x {len(r.rounds)}"),
        ("spec put -> running on a node p50 / p90 / p99", " / ".join(ms(x) for x in p)),
        (
            "slowest node per round p50 / max",
            f"{ms(percentile(r.rounds, 50))} / {ms(max(r.rounds))}",
        ),
        ("governed rollout (capacity 1), all nodes", f"{r.governed:.2f} s"),
        ("target p99 ≤ 2 s", "PASS" if p[2] <= TARGET_P99 else "MISS"),
    ]


def section(r: Results) -> str:
    return results_section(
        f"fleet_rollout: a spec put -> running on {r.nodes} daemons",
        lines(r),
        "in-process daemons on a local `nats-server -js`, each a manager machine (kv watch mode "
        "+ plugins watcher); `steward fleet pack|publish` puts a new version of `app` (archive "
        "in a JetStream object store); time from just before the publish command until each "
        "node runs the new version. Then one rollout with every entry behind a governor of 1.",
        headline=["spec put -> running on a node p50 / p90 / p99"],
        machine_note=f"; load average at the end {loadavg()}",
        footer="\n".join(f"`{line}`  " for line in summary(r)),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Spec put -> shipped machine running on N in-process daemons, and a "
        "governed rollout."
    )
    parser.add_argument("--nodes", type=positive_int, default=5, help="daemons (5)")
    parser.add_argument("--rounds", type=positive_int, default=10, help="versions shipped (10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 daemons, 2 rounds")
    add_output_args(parser, "keep the work dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.rounds = 3, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(r: Results) -> None:
        report_figures(lines(r), lambda: section(r), summary(r), no_record=args.no_record)

    return run_main("fleet_rollout", lambda: asyncio.run(run_bench(args)), report)


if __name__ == "__main__":
    sys.exit(main())
