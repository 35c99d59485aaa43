#!/usr/bin/env python3
"""kv: a put into a JetStream KV bucket -> the transition it causes, in watch and poll mode.

The real daemon (``steward run``, a subprocess) runs two machines on a real ``nats-server -js``
started on a free port: ``kv_watch`` (``mode: watch``, a 5 m backstop interval) and
``kv_poll`` (``mode: poll``, ``--poll-interval``, 1 s by default). Each has a kv watcher whose
success moves ``idle -> got`` and a 10 ms timer that moves it back. This process puts a new
value into the machine's key, then waits for the machine's ``changed`` transition event (the
daemon publishes its events to core NATS; a subscriber here receives them). Latency = the
event's ``time`` (when the daemon decided the transition) - the wall-clock time just before
the put; both clocks are this host's. The next put waits for the machine to be back in
``idle``; a poll-mode put waits a random 0…interval first, so puts fall anywhere in the
polling cycle.

Target: watch-mode p99 ≤ 100 ms. Poll mode has no target: its latency is about half the
interval on average, bounded by the interval. Choria's kv watcher has only poll mode and no
default interval (a kv watcher must set one; Choria's machine manager polls every 1 m and
5 m); steward's default poll interval is 30 s.

    .venv/bin/python bench/kv_latency.py --no-record            # a look
    .venv/bin/python bench/kv_latency.py                        # appended to RESULTS.md
    .venv/bin/python bench/kv_latency.py --quick --no-record    # smoke, ~20 s

Prints ``kv-watch-latency: … PASS|MISS`` and a ``kv-poll-latency: …`` line; exits 0 either
way (1 only if the benchmark itself could not run).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from benchlib import (
    Daemon,
    NatsServer,
    add_output_args,
    duration_arg,
    keep_or_remove,
    latency_line,
    loadavg,
    ms,
    percentile,
    positive_int,
    report_figures,
    results_section,
    run_main,
    short_state_dir,
)
from nats.aio.msg import Msg

BUCKET = "BENCH"
SUBJECT = "steward.events.bench.*.transition"
TARGET_P99 = 0.100  # seconds, watch mode
READY_TIMEOUT = 60.0
EVENT_TIMEOUT = 30.0  # seconds a put may take to show as a transition before the run fails
CHORIA_NOTE = "Choria: poll only, no default interval (its machine manager: 1m and 5m)"

MACHINE = """\
name: kv_{mode}
version: 1.0.0
initial_state: idle
transitions:
  - {{name: changed, from: [idle], destination: got}}
  - {{name: rearm, from: [got], destination: idle}}
watchers:
  - name: value
    type: kv
    interval: {interval}
    success_transition: changed
    properties: {{bucket: {bucket}, key: {mode}, mode: {mode}}}
  - name: back
    type: timer
    state_match: [got]
    fail_transition: rearm
    properties: {{timer: 10ms}}
"""


@dataclass
class Transitions:
    """Transition events by machine, as they arrive."""

    queues: dict[str, asyncio.Queue[tuple[str, float]]] = field(default_factory=dict)

    def queue(self, machine: str) -> asyncio.Queue[tuple[str, float]]:
        return self.queues.setdefault(machine, asyncio.Queue())

    async def on_msg(self, msg: Msg) -> None:
        event = json.loads(msg.data)
        data = event["data"]
        at = dt.datetime.fromisoformat(event["time"]).timestamp()
        self.queue(data["machine"]).put_nowait((data["transition"], at))

    async def next(self, machine: str, transition: str) -> float:
        """The time of ``machine``'s next ``transition`` (others before it are skipped)."""
        async with asyncio.timeout(EVENT_TIMEOUT):
            while True:
                name, at = await self.queue(machine).get()
                if name == transition:
                    return at


async def _quiet(*_: Any) -> None:
    pass


@dataclass
class Phase:
    mode: str
    interval: float  # the kv watcher's interval (watch mode: the backstop)
    latencies: list[float] = field(default_factory=list)

    def quantile(self, q: int) -> float:
        return percentile(self.latencies, q)


async def measure(
    kv: Any, transitions: Transitions, phase: Phase, samples: int, rng: random.Random
) -> None:
    machine = f"kv_{phase.mode}"
    # the first put only proves the watcher reads (and, in watch mode, follows) the key
    await kv.put(phase.mode, b"warm-up")
    await transitions.next(machine, "changed")
    await transitions.next(machine, "rearm")
    for i in range(samples):
        pause = rng.uniform(0, phase.interval) if phase.mode == "poll" else rng.uniform(0, 0.02)
        await asyncio.sleep(pause)
        started = time.time()
        await kv.put(phase.mode, f"value {i}".encode())
        decided = await transitions.next(machine, "changed")
        phase.latencies.append(decided - started)
        await transitions.next(machine, "rearm")


async def run_bench(args: argparse.Namespace) -> list[Phase]:
    workdir = Path(tempfile.mkdtemp(prefix="steward-kv-bench-"))
    machines_dir = workdir / "machines"
    machines_dir.mkdir()
    watch = Phase("watch", 300.0)
    poll = Phase("poll", args.poll_interval)
    for phase, interval in ((watch, "5m"), (poll, f"{int(args.poll_interval * 1000)}ms")):
        text = MACHINE.format(mode=phase.mode, interval=interval, bucket=BUCKET)
        (machines_dir / f"kv_{phase.mode}.yaml").write_text(text)
    server = NatsServer(workdir)
    state_dir = short_state_dir("skv-")
    daemon = Daemon(
        machines_dir,
        state_dir,
        workdir / "daemon.log",
        extra_args=[
            *("--log-level", "warning", "--nats-server"),
            *(server.url, "--metrics-listen", "127.0.0.1:0"),
        ],
        extra_env={"STEWARD_CONFIG": str(state_dir / "steward.yaml")},
    )
    try:
        server.start()
        print(f"nats-server -js on {server.url}; load {loadavg()}", flush=True)
        nc = await nats.connect(
            server.url,
            name="bench kv",
            error_cb=_quiet,
            disconnected_cb=_quiet,
            reconnected_cb=_quiet,
            closed_cb=_quiet,
        )
        try:
            kv = await nc.jetstream().create_key_value(bucket=BUCKET)
            transitions = Transitions()
            await nc.subscribe(SUBJECT, cb=transitions.on_msg)
            await nc.flush()
            state_dir.mkdir(parents=True, exist_ok=True)
            (state_dir / "steward.yaml").write_text("")
            daemon.start()
            rng = random.Random(args.seed)
            await measure(kv, transitions, watch, args.samples, rng)
            print(phase_line(watch), flush=True)
            await measure(kv, transitions, poll, args.poll_samples, rng)
            print(phase_line(poll), flush=True)
        finally:
            await nc.close()
        if not daemon.alive():
            raise daemon.failed("the daemon exited during the run")
        return [watch, poll]
    finally:
        daemon.close()
        server.close()
        shutil.rmtree(state_dir, ignore_errors=True)
        keep_or_remove(args.keep, str(workdir), workdir)


def phase_line(phase: Phase) -> str:
    n = len(phase.latencies)
    if phase.mode == "watch":
        return latency_line(
            "kv-watch-latency", phase.latencies, TARGET_P99, f"{n} puts, mode: watch", decimals=1
        )
    return (
        f"kv-poll-latency: p50 {ms(phase.quantile(50))} p99 {ms(phase.quantile(99))} "
        f"({n} puts, mode: poll every {ms(phase.interval)}; steward's default interval 30 s; "
        f"{CHORIA_NOTE}) (no target: about half the interval)"
    )


def lines(phases: list[Phase]) -> list[tuple[str, str]]:
    out = []
    for p in phases:
        label = f"{p.mode} mode" + (" (5 m backstop)" if p.mode == "watch" else "")
        if p.mode == "poll":
            label += f" every {ms(p.interval)}"
        out += [
            (f"{label}: puts", str(len(p.latencies))),
            (
                f"{label}: put -> transition p50 / p90 / p99",
                f"{ms(p.quantile(50), 1)} / {ms(p.quantile(90), 1)} / {ms(p.quantile(99), 1)}",
            ),
            (
                f"{label}: min / max",
                f"{ms(min(p.latencies, default=0), 1)} / {ms(max(p.latencies, default=0), 1)}",
            ),
        ]
    out.append(
        ("Choria's kv poll interval", "none by default (must be set); 1m / 5m in its manager")
    )
    watch = phases[0]
    out.append(("target watch p99 ≤ 100ms", "PASS" if watch.quantile(99) <= TARGET_P99 else "MISS"))
    return out


def section(phases: list[Phase]) -> str:
    return results_section(
        "kv_latency: a KV put -> its transition, watch and poll mode",
        lines(phases),
        "the daemon (subprocess) on a local `nats-server -js`; a put into a KV key, then the "
        "machine's transition event (core NATS subscriber in the benchmark); latency = the "
        "event's `time` - the time just before the put. Poll-mode puts wait a random "
        "0…interval first.",
        headline=[f"poll mode every {ms(phases[1].interval)}: put -> transition p50 / p90 / p99"],
        machine_note=f"; load average at the end {loadavg()}",
        footer="\n".join(f"`{phase_line(p)}`  " for p in phases),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="KV put -> transition latency in watch and poll mode, with the real daemon "
        "and nats-server.",
    )
    parser.add_argument("--samples", type=positive_int, default=100, help="watch puts (100)")
    parser.add_argument("--poll-samples", type=positive_int, default=30, help="poll puts (30)")
    parser.add_argument(
        "--poll-interval", type=duration_arg, default=1.0, help="poll interval (1s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random pauses between puts (0)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 and 5 puts")
    add_output_args(parser, "keep the work dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.poll_samples = 10, 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(phases: list[Phase]) -> None:
        report_figures(
            lines(phases),
            lambda: section(phases),
            [phase_line(p) for p in phases],
            no_record=args.no_record,
        )

    return run_main("kv_latency", lambda: asyncio.run(run_bench(args)), report)


if __name__ == "__main__":
    sys.exit(main())
