"""virtual_fleet: K virtual nodes against a 3-server JetStream cluster (R3), steady and storm.

Each virtual node has its own node name, its own state database (``SqliteStore``: its
outbox), its own NATS connection (``steward.broker.NatsConnection``, with the reconnect plan)
and steward's real event pipeline (``event_pipeline``: ``Emitter`` → outbox → ``NatsPublisher``
with the paced drain). Its one machine flips ``--rate`` times a minute through
``Emitter.commit_transition`` (the transition and its event in one transaction, as a running
machine does); its fleet heartbeat (the ``<node>`` key, ``node_value``) is written every
``--heartbeat``. Nodes are spread over ``--processes`` worker processes (this script with
``--worker``), which report once a second on stdout and take ``stop`` on stdin.

Scenarios, one run:

- **steady**: ``--steady`` seconds; the servers' CPU (all three, % of one core) and RSS, and
  the event delay (the transition's timestamp → a core NATS subscriber), p50/p99.
- **storm**: all three servers SIGKILLed for ``--storm`` seconds while the nodes keep
  transitioning into their outboxes, then started again. The return is when JetStream answers
  again (a meta leader; the servers take connections some seconds before). Figures: the time
  until every node has delivered its backlog (connected, no backlog, its outbox empty but for
  live events), the catch-up rate (the backlog at the return / that time), events delivered
  per second, the servers' and the workers' CPU, when the nodes reconnected (first and last),
  the errors by kind (failed reconnect attempts are most of them), and at the end the whole
  stream read back: every seq of every node once, in order.
- **live delay during the drain** (the target): an event a node makes while it is still
  disconnected is backlog for that node, so live events are those made after *their own
  node* is back (reconnected, and JetStream answering), until every backlog is delivered;
  their delay is timestamp → the core subscriber. Beside it, as information, the delay of
  every event made after the cluster's return (which counts the events of nodes not yet
  reconnected).

The defaults are the issue's scenario (``make bench-virtual-fleet``): 10,000 nodes over 4
processes, 1 transition a minute and a heartbeat every 30 s each, 5 minutes steady, a
10-minute outage; ~20 minutes and ~6 GB of RAM in all, ~10,000 file descriptors a worker.

State databases live under ``--state-root`` (default /dev/shm): K nodes on one disk would
measure that disk's fsyncs, not steward or NATS. ``--quick`` (200 nodes, 20 s steady, 20 s
storm, 12 transitions a minute) is the smoke run of ``make bench-fleet-quick`` (part of
``make bench-quick``). The cluster comes from the tests' harness (``tests.support.nats_cluster``:
three nats-servers with JetStream on free loopback ports), imported from the repository root,
so the benchmark and the failover test run the same cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchlib import (
    REPO_DIR,
    BenchError,
    add_output_args,
    cpu_percent,
    duration_arg,
    ms,
    percentile,
    positive_int,
    proc_sample,
    report_figures,
    results_section,
    run_main,
    summary_line,
)

sys.path.insert(0, str(REPO_DIR))

SCENARIO = "virtual_fleet"
STREAM = "STEWARD_EVENTS"
PREFIX = "steward.events"
MACHINE = "service"
CATCH_UP_TARGET = 5000.0  # backlog events/s
LIVE_P99_TARGET = 2.0  # seconds
DRAIN_DEADLINE = 600.0  # seconds for the backlog after the storm before giving up
STOP_DEADLINE = 120.0  # seconds for the outboxes to empty after ``stop``


# the worker: K/P virtual nodes in one process --------------------------------------------------
class VirtualNode:
    """One node: a state database, a NATS connection, steward's event pipeline."""

    def __init__(
        self,
        name: str,
        state_dir: Path,
        servers: list[str],
        rng: random.Random,
        max_wait: float | None = None,
    ) -> None:
        from steward.broker.connection import NatsConnection
        from steward.broker.settings import NatsSettings
        from steward.events.drain import DrainSettings
        from steward.events.formats import event_format
        from steward.events.pipeline import event_pipeline
        from steward.machine.persistence import SqliteStore

        self.name = name
        settings = NatsSettings(servers=tuple(servers), stream=STREAM, replicas=3)
        if max_wait is not None:  # else steward's default nats.reconnect_max_wait
            settings = dataclasses.replace(settings, reconnect_max_wait=max_wait)
        self.store = SqliteStore(state_dir / "steward.db")
        self.nats = NatsConnection(settings, name=f"virtual {name}", rng=rng)
        self.format = event_format("steward", name)
        pipeline = event_pipeline(
            self.format,
            self.store,
            self.nats,
            stream=STREAM,
            replicas=3,
            limits=settings.limits,
            drain=DrainSettings(),
            rng=rng,
        )
        self.emitter = pipeline.emitter
        self.publisher = pipeline.publisher
        self.state = "up"
        self.seq = 0
        self.instance = f"{name}-1"
        self.started = time.time()
        self.heartbeat_errors = 0
        self.error_kinds: Counter[str] = Counter()  # what failed, by kind (the message's head)
        report = self.nats.report

        def counted(message: str) -> None:
            self.error_kinds[": ".join(message.split(": ")[:2])[:60]] += 1
            report(message)

        self.nats.report = counted  # type: ignore[method-assign]

    async def open(self) -> None:
        from steward.machine.persistence import SavedMachine

        await self.store.open()
        await self.store.save(SavedMachine(MACHINE, "1.0.0", self.state, time.time(), 0, {}))

    def start(self) -> None:
        self.nats.start()
        self.publisher.start()

    async def transition(self) -> None:
        from steward.machine.history import Cause
        from steward.machine.persistence import TransitionRecord

        to = "down" if self.state == "up" else "up"
        name = f"go_{to}"
        at = time.time()
        self.seq += 1
        record = TransitionRecord(
            MACHINE, "1.0.0", name, self.state, to, self.seq, at, Cause.manual()
        )
        event = self.format.transition(
            machine=MACHINE,
            version="1.0.0",
            instance=self.instance,
            transition=name,
            from_state=self.state,
            to_state=to,
            seq=self.seq,
            at=at,
            cause="manual",
        )
        await self.emitter.commit_transition(self.store, record, event)
        self.state = to

    async def heartbeat(self, interval: float) -> None:
        """The fleet bucket's ``<node>`` key, as ``FleetReporter`` writes it."""
        from steward import __version__
        from steward.fleet.state import DEFAULT_BUCKET, encode, node_key, node_value

        if not self.nats.connected:
            return
        value = node_value(
            node=self.name,
            steward_version=__version__,
            started=self.started,
            heartbeat=time.time(),
            interval=interval,
            machines=(),
        )
        try:
            js = await self.nats.jetstream()
            await js.publish(
                f"$KV.{DEFAULT_BUCKET}.{node_key(self.name)}", encode(value), timeout=5
            )
        except Exception:  # counted: a heartbeat lost in an outage is written again later
            self.heartbeat_errors += 1

    def drained(self) -> bool:
        """Connected, no backlog, nothing but live events in the outbox."""
        status = self.publisher.status() or {}
        return (
            self.nats.connected
            and not status.get("backlog")
            and self.store.outbox_snapshot().events <= 2
        )

    async def close(self) -> None:
        await self.publisher.stop(0)
        await self.nats.stop()
        await self.store.close()


async def _every(period: float, offset: float, action: Any, stop: asyncio.Event) -> None:
    await asyncio.sleep(offset)
    while not stop.is_set():
        began = time.monotonic()
        await action()
        await asyncio.sleep(max(0.0, period - (time.monotonic() - began)))


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def worker(args: argparse.Namespace) -> None:
    logging.getLogger("steward").setLevel(logging.ERROR)  # K nodes' reconnect warnings: counted
    rng = random.Random(args.index)
    base = Path(args.base)
    nodes: list[VirtualNode] = []
    for i in range(args.nodes):
        name = f"v{args.index:02d}-{i:05d}.fleet.example.com"
        state = base / name
        state.mkdir(parents=True)
        node = VirtualNode(name, state, args.servers.split(","), rng, args.reconnect_max_wait)
        await node.open()
        nodes.append(node)
    opened = time.time()
    for node in nodes:
        node.start()
    while sum(n.nats.connected for n in nodes) < len(nodes):
        await asyncio.sleep(0.2)
    _emit({"ready": True, "open_s": opened - args.began, "connect_s": time.time() - opened})

    moving = asyncio.Event()  # set: stop transitioning
    period = 60.0 / args.rate
    tasks = [
        asyncio.create_task(_every(period, rng.uniform(0, period), n.transition, moving))
        for n in nodes
    ]
    tasks += [
        asyncio.create_task(
            _every(
                args.heartbeat,
                rng.uniform(0, args.heartbeat),
                lambda n=n: n.heartbeat(args.heartbeat),
                moving,
            )
        )
        for n in nodes
    ]

    def report() -> dict[str, Any]:
        return {
            "t": time.time(),
            "connected": sum(n.nats.connected for n in nodes),
            "outbox": sum(n.store.outbox_snapshot().events for n in nodes),
            "not_drained": sum(not n.drained() for n in nodes),
            "published": sum(n.publisher.published for n in nodes),
            "errors": sum(n.nats.state.errors for n in nodes),
            "failed_connects": sum(n.nats.state.failed_connects for n in nodes),
            "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }

    async def reporter() -> None:
        while True:
            _emit(report())
            await asyncio.sleep(1.0)

    status_task = asyncio.create_task(reporter())
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    moving.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    deadline = time.monotonic() + STOP_DEADLINE
    while time.monotonic() < deadline and any(n.store.outbox_snapshot().events for n in nodes):
        await asyncio.sleep(0.2)
    status_task.cancel()
    final = report()
    final["final"] = True
    final["seqs"] = {n.name: n.seq for n in nodes}
    final["since"] = {n.name: n.nats.state.since for n in nodes}  # the last (re)connect
    final["dropped"] = sum(n.store.outbox_snapshot().dropped for n in nodes)
    final["overloads"] = sum(getattr(n.publisher, "overloads", 0) for n in nodes)
    final["heartbeat_errors"] = sum(n.heartbeat_errors for n in nodes)
    final["error_kinds"] = dict(sum((n.error_kinds for n in nodes), Counter()))
    stuck = [n for n in nodes if n.store.outbox_snapshot().events]
    final["stuck"] = [
        {"node": n.name, "events": n.store.outbox_snapshot().events, **n.publisher.status()}
        for n in stuck[:3]
    ]
    final["fds"] = sum(1 for _ in Path("/proc/self/fd").iterdir())
    final["threads"] = threading.active_count()
    _emit(final)
    await asyncio.gather(*(n.close() for n in nodes), return_exceptions=True)


# the coordinator -------------------------------------------------------------------------------
@dataclass
class Worker:
    proc: subprocess.Popen[str]
    last: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[float, int]] = field(default_factory=list)  # (t, published)
    final: dict[str, Any] | None = None
    ready: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)

    def follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                doc = json.loads(line)
            except ValueError:
                self.lines.append(line)
                continue
            if doc.get("ready"):
                self.ready = doc
            elif doc.get("final"):
                self.final = doc
            else:
                self.last = doc
                self.history.append((doc["t"], doc["published"]))


class DelayProbe:
    """A core NATS subscriber on every transition: (timestamp, delay, node) of each one."""

    def __init__(self, servers: list[str]) -> None:
        self.servers = servers
        self.samples: list[tuple[float, float, str]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.nc: Any = None

    def start(self) -> None:
        import nats

        async def go() -> None:
            async def quiet(exc: Exception) -> None:
                pass

            self.nc = await nats.connect(
                self.servers,
                name="virtual-fleet probe",
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
                error_cb=quiet,
                pending_size=256 * 1024 * 1024,
            )
            await self.nc.subscribe(
                f"{PREFIX}.*.*.transition", cb=self.received, pending_msgs_limit=1_000_000
            )

        self.thread.start()
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)

    async def received(self, msg: Any) -> None:
        now = time.time()
        data = json.loads(msg.data)["data"]
        at = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00")).timestamp()
        self.samples.append((at, now - at, data["node"]))

    def between(self, start: float, end: float) -> list[float]:
        return [d for at, d, _ in list(self.samples) if start <= at <= end]

    def after_own_reconnect(self, since: dict[str, float], end: float) -> list[float]:
        """Delays of events made after their node's own reconnect and before ``end``."""
        return [d for at, d, node in list(self.samples) if since.get(node, end) <= at <= end]

    def stop(self) -> None:
        if self.nc is not None:
            asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


class ProcessMeter:
    """CPU (the processes together, % of one core) and RSS of some processes, every second."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids  # the processes running now
        self.samples: list[tuple[float, float, int]] = []  # (wall time, cpu %, rss KiB)
        self._last: dict[int, Any] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            cpu, rss = 0.0, 0
            for pid in self.pids():
                sample = proc_sample(pid)
                if sample is None:
                    continue
                before = self._last.get(pid)
                if before is not None:
                    cpu += cpu_percent(sample.self_ticks - before.self_ticks, sample.at - before.at)
                self._last[pid] = sample
                rss += sample.rss_kib
            self.samples.append((time.time(), cpu, rss))

    def between(self, start: float, end: float) -> list[tuple[float, int]]:
        return [(c, r) for t, c, r in self.samples if start <= t <= end]

    def stop(self) -> None:
        self._stop.set()


async def _read_seqs(url: str) -> tuple[dict[str, list[int]], int]:
    """Every transition in the stream: seqs by node, in stream order; and the message count."""
    import nats

    nc = await nats.connect(url, name="virtual-fleet reader")
    seqs: dict[str, list[int]] = {}
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        total = info.state.messages
        sub = await js.subscribe(f"{PREFIX}.*.*.transition", stream=STREAM, ordered_consumer=True)
        pending = total
        while pending:
            try:
                msg = await sub.next_msg(timeout=10)
            except TimeoutError:
                break
            pending -= 1
            data = json.loads(msg.data)["data"]
            seqs.setdefault(data["node"], []).append(int(data["seq"]))
        await sub.unsubscribe()
        return seqs, total
    finally:
        await nc.close()


def _setup_stream(url: str) -> None:
    """The stream and the bucket, created once (as the first node would), R3."""
    import nats
    from nats.js.api import KeyValueConfig

    from steward.broker.settings import StreamLimits
    from steward.events.publisher import stream_config
    from steward.fleet.state import DEFAULT_BUCKET

    async def go() -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await js.add_stream(stream_config(STREAM, [f"{PREFIX}.>"], 3, StreamLimits()))
            await js.create_key_value(KeyValueConfig(bucket=DEFAULT_BUCKET, history=1, replicas=3))
        finally:
            await nc.close()

    asyncio.run(go())


def _peak_rate(workers: list[Worker], start: float, end: float) -> float:
    """The most events a second all workers together delivered, over 1 s windows."""
    per_second: dict[int, float] = {}
    for w in workers:
        points = [(t, p) for t, p in w.history if start - 1 <= t <= end]
        for (t0, p0), (t1, p1) in itertools.pairwise(points):
            if t1 > t0:
                per_second[int(t1)] = per_second.get(int(t1), 0.0) + (p1 - p0) / (t1 - t0)
    return max(per_second.values(), default=0.0)


def _timeline(workers: list[Worker], start: float, end: float) -> list[int]:
    """Events delivered in each second from ``start`` (all workers together). A worker's
    reports come a little more than a second apart (the report itself takes time), so what one
    report adds is spread over the seconds since the one before, in proportion: binned by the
    report's second alone, every few seconds all workers skipped the same second together and
    it read as 0, the next as a double."""
    seconds = [0.0] * max(1, int(end - start) + 1)
    for w in workers:
        points = [(t - start, p) for t, p in w.history if start - 2 <= t <= end]
        for (t0, p0), (t1, p1) in itertools.pairwise(points):
            if t1 <= max(t0, 0.0):
                continue
            rate = (p1 - p0) / (t1 - t0)
            lo = max(t0, 0.0)
            while lo < t1:
                second = int(lo)
                hi = min(t1, second + 1.0)
                seconds[min(len(seconds) - 1, second)] += rate * (hi - lo)
                lo = hi
    return [round(n) for n in seconds]


def _wait(what: str, check: Any, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)
    return time.time()


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.nats_cluster import NatsCluster

    work = Path(args.state_root) / f"vfleet-{os.getpid()}"
    work.mkdir(parents=True)
    cluster = NatsCluster(work / "cluster")
    workers: list[Worker] = []
    probe: DelayProbe | None = None
    meter = ProcessMeter(lambda: [s.proc.pid for s in cluster.servers if s.running])
    worker_meter = ProcessMeter(lambda: [w.proc.pid for w in workers if w.proc.poll() is None])
    figures: dict[str, Any] = {"nodes": args.nodes, "processes": args.processes}
    try:
        cluster.start()
        _setup_stream(cluster.urls[0])
        began = time.time()
        share = [args.nodes // args.processes + (i < args.nodes % args.processes)
                 for i in range(args.processes)]  # fmt: skip
        for i, k in enumerate(share):
            argv = [
                sys.executable, __file__, "--worker", "--index", str(i), "--nodes", str(k),
                "--servers", ",".join(cluster.urls), "--rate", str(args.rate),
                "--heartbeat", str(args.heartbeat), "--base", str(work / f"w{i}"),
                "--began", str(began),
            ]  # fmt: skip
            if args.reconnect_max_wait is not None:
                argv += ["--reconnect-max-wait", str(args.reconnect_max_wait)]
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO_DIR)},
            )
            w = Worker(proc)
            threading.Thread(target=w.follow, daemon=True).start()
            workers.append(w)

        def alive() -> None:
            for w in workers:
                if w.proc.poll() is not None:
                    raise BenchError(f"a worker exited with {w.proc.returncode}")

        def all_ready() -> bool:
            alive()
            return all(w.ready for w in workers)

        _wait("every virtual node connected", all_ready, 600)
        figures["start"] = time.time() - began
        print(f"{args.nodes} nodes connected in {figures['start']:.1f}s", flush=True)
        probe = DelayProbe(cluster.urls)
        probe.start()
        meter.thread.start()
        worker_meter.thread.start()

        steady_from = time.time()
        time.sleep(args.steady)
        steady_to = time.time()
        figures["steady"] = {
            "servers": meter.between(steady_from, steady_to),
            "delays": probe.between(steady_from, steady_to - 5),
            "published": sum(w.last.get("published", 0) for w in workers),
        }
        print("steady state done; the storm: every server killed", flush=True)

        errors_before = sum(w.last.get("errors", 0) for w in workers)
        failed_before = sum(w.last.get("failed_connects", 0) for w in workers)
        for i in range(len(cluster.servers)):
            cluster.kill(i)
        down_at = time.time()
        time.sleep(args.storm)
        backlog = sum(w.last.get("outbox", 0) for w in workers)
        restarted = time.time()
        for server in cluster.servers:
            server.start()
        cluster.wait_ready()
        back = time.time()
        print(f"cluster back after {back - down_at:.0f}s with {backlog} events waiting", flush=True)

        def drained() -> bool:
            alive()
            return all(
                w.last.get("t", 0) > back + 1 and w.last["not_drained"] == 0 for w in workers
            )

        done = _wait("every backlog delivered", drained, DRAIN_DEADLINE)
        caught_up = done - back
        print(f"every backlog delivered in {caught_up:.1f}s", flush=True)
        time.sleep(3)  # live traffic after the drain
        figures["storm"] = {
            "peak_rate": _peak_rate(workers, back, done + 1),
            "seconds": back - down_at,
            "ready": back - restarted,  # servers started -> JetStream answers
            "backlog": backlog,
            "caught_up": caught_up,
            "servers": meter.between(back, done),
            "workers": worker_meter.between(back, done),
            "timeline": _timeline(workers, restarted, done + 1),
            "live": probe.between(back, done),
            "errors": sum(w.last.get("errors", 0) for w in workers) - errors_before,
            "failed_connects": (
                sum(w.last.get("failed_connects", 0) for w in workers) - failed_before
            ),
        }
        storm = figures["storm"]
        for w in workers:
            assert w.proc.stdin is not None
            w.proc.stdin.write("stop\n")
            w.proc.stdin.flush()
        _wait(
            "the workers' final reports", lambda: all(w.final for w in workers), STOP_DEADLINE + 60
        )
        finals = [w.final for w in workers if w.final is not None]
        seqs: dict[str, int] = {}
        since: dict[str, float] = {}
        for f in finals:
            seqs.update(f["seqs"])
            since.update({n: t for n, t in f["since"].items() if t is not None})
        returned = sorted(t - restarted for t in since.values() if t >= restarted)
        storm["reconnected"] = (returned[0], returned[-1]) if returned else (0.0, 0.0)
        # a node is back once it is reconnected and JetStream answers again (the servers take
        # connections some seconds before JetStream has its leaders back)
        storm["live_own"] = probe.after_own_reconnect(
            {n: max(t, back) for n, t in since.items()}, done
        )
        stored, _total = asyncio.run(_read_seqs(cluster.urls[0]))
        missing = dupes = disorder = 0
        for node, last in seqs.items():
            got = stored.get(node, [])
            missing += len(set(range(1, last + 1)) - set(got))
            dupes += len(got) - len(set(got))
            disorder += sum(1 for a, b in itertools.pairwise(got) if b <= a)
        figures["check"] = {
            "expected": sum(seqs.values()),
            "stored": sum(len(v) for v in stored.values()),
            "missing": missing,
            "duplicates": dupes,
            "out_of_order": disorder,
            "left_in_outboxes": sum(f["outbox"] for f in finals),
            "dropped": sum(f["dropped"] for f in finals),
            "overloads": sum(f["overloads"] for f in finals),
            "heartbeat_errors": sum(f["heartbeat_errors"] for f in finals),
            "error_kinds": dict(sum((Counter(f["error_kinds"]) for f in finals), Counter())),
        }
        for f in finals:
            for node in f["stuck"]:
                print(f"events left in an outbox: {node}", flush=True)
        figures["workers"] = {
            "rss_mib": max(f["rss_kib"] for f in finals) / 1024,
            "fds": max(f["fds"] for f in finals),
            "threads": max(f["threads"] for f in finals),
        }
        return figures
    finally:
        if probe is not None:
            probe.stop()
        meter.stop()
        worker_meter.stop()
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()
            w.proc.wait()
        cluster.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, f: dict[str, Any]) -> int:
    steady, storm, check, workers = f["steady"], f["storm"], f["check"], f["workers"]
    s_cpu = [c for c, _ in steady["servers"]] or [0.0]
    s_rss = [r for _, r in steady["servers"]] or [0]
    st_cpu = [c for c, _ in storm["servers"]] or [0.0]
    w_cpu = [c for c, _ in storm["workers"]] or [0.0]
    delays = steady["delays"]
    live = storm["live_own"]
    since_back = storm["live"]
    rate = storm["backlog"] / storm["caught_up"] if storm["caught_up"] > 0 else float("inf")
    per_node = workers["rss_mib"] * args.processes / max(1, args.nodes) * 1024
    lines = [
        ("nodes x processes", f"{args.nodes} x {args.processes}"),
        ("transitions per node", f"{args.rate:g}/min (+ a heartbeat every {args.heartbeat:g}s)"),
        ("start (open + connect every node)", f"{f['start']:.1f}s"),
        ("steady: servers CPU mean / max", f"{sum(s_cpu) / len(s_cpu):.0f}% / {max(s_cpu):.0f}%"),
        ("steady: servers RSS (3 together) max", f"{max(s_rss) / 1024:.0f} MiB"),
        (
            "steady: event delay p50 / p99",
            f"{ms(percentile(delays, 50), 1)} / {ms(percentile(delays, 99), 1)} ({len(delays)})",
        ),
        ("storm: outage", f"{storm['seconds']:.0f}s"),
        ("storm: backlog at the return", f"{storm['backlog']} events"),
        ("storm: every backlog delivered after", f"{storm['caught_up']:.1f}s"),
        ("storm: catch-up rate (backlog / that time)", f"{rate:.0f} events/s"),
        ("storm: peak delivery rate (1 s)", f"{storm['peak_rate']:.0f} events/s"),
        ("storm: servers CPU peak during the drain", f"{max(st_cpu):.0f}%"),
        (
            "storm: workers CPU mean / peak during the drain",
            f"{sum(w_cpu) / len(w_cpu):.0f}% / {max(w_cpu):.0f}%",
        ),
        (
            "storm: delivered per second from the servers' start",
            " ".join(str(n) for n in storm["timeline"][:40]),
        ),
        (
            "storm: servers started -> JetStream ready (the return)",
            f"{storm['ready']:.1f}s",
        ),
        (
            "storm: every node reconnected (first / last, after the servers started)",
            f"{storm['reconnected'][0]:.1f}s / {storm['reconnected'][1]:.1f}s",
        ),
        (
            "storm: live delay p50 / p99 (made after the node is back)",
            f"{ms(percentile(live, 50))} / {ms(percentile(live, 99))} ({len(live)} events)",
        ),
        (
            "storm: delay p50 / p99 of all made after JetStream is back",
            f"{ms(percentile(since_back, 50))} / {ms(percentile(since_back, 99))} "
            f"({len(since_back)} events)",
        ),
        (
            "storm: errors: failed reconnect attempts / other (publishes …)",
            f"{storm['failed_connects']} / {storm['errors'] - storm['failed_connects']}",
        ),
        ("stream: transitions expected / stored", f"{check['expected']} / {check['stored']}"),
        (
            "stream: missing / duplicates / out of order",
            f"{check['missing']} / {check['duplicates']} / {check['out_of_order']}",
        ),
        ("outbox: dropped / left at the end", f"{check['dropped']} / {check['left_in_outboxes']}"),
        ("publisher overloads (429/503)", str(check["overloads"])),
        (
            "errors by kind (the whole run)",
            "; ".join(f"{k} {n}" for k, n in Counter(check["error_kinds"]).most_common(6)),
        ),
        (
            "worker: peak RSS / fds / threads",
            f"{workers['rss_mib']:.0f} MiB / {workers['fds']} / {workers['threads']}",
        ),
        ("memory per virtual node", f"{per_node:.0f} KiB"),
    ]
    exact = check["missing"] == 0 and check["duplicates"] == 0 and check["out_of_order"] == 0
    live_p99 = percentile(live, 99)
    summaries = [
        summary_line(
            "virtual_fleet-catch-up", f"{rate:.0f} events/s", f"≥ {CATCH_UP_TARGET:.0f} events/s",
            f"{rate / CATCH_UP_TARGET:.2f}", rate >= CATCH_UP_TARGET,
        ),
        summary_line(
            "virtual_fleet-live-p99", ms(live_p99), f"≤ {ms(LIVE_P99_TARGET)}",
            f"{live_p99 / LIVE_P99_TARGET:.2f}", live_p99 <= LIVE_P99_TARGET,
        ),
        summary_line(
            "virtual_fleet-exactly-once",
            f"{check['missing']} missing, {check['duplicates']} duplicates",
            "0 and 0", "-", exact and check["dropped"] == 0,
        ),
    ]  # fmt: skip

    def section() -> str:
        return results_section(
            f"{SCENARIO}: {args.nodes} virtual nodes, 3-server cluster R3, "
            f"{args.steady:g}s steady, {args.storm:g}s storm",
            lines,
            "each node its own SqliteStore outbox (under "
            f"{args.state_root}), NATS connection and steward event pipeline; the servers' CPU "
            "is the three processes together in % of one core; delays are transition "
            "timestamp → a core subscriber",
            headline=(
                "storm: catch-up rate (backlog / that time)",
                "steady: event delay p50 / p99",
            ),
            footer="\n".join(f"`{line}`  " for line in summaries),
        )

    report_figures(lines, section, summaries, no_record=args.no_record)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=positive_int, default=10_000)
    parser.add_argument("--processes", type=positive_int, default=4)
    parser.add_argument("--steady", type=duration_arg, default=300.0)
    parser.add_argument("--storm", type=duration_arg, default=600.0)
    parser.add_argument("--rate", type=float, default=1.0, help="transitions per node a minute")
    parser.add_argument("--heartbeat", type=duration_arg, default=30.0)
    parser.add_argument("--state-root", default="/dev/shm" if Path("/dev/shm").is_dir() else "/tmp")
    parser.add_argument("--quick", action="store_true", help="200 nodes, 20s steady, 20s storm")
    parser.add_argument(
        "--reconnect-max-wait",
        type=float,
        default=None,
        help="seconds: the nodes' nats.reconnect_max_wait (default: steward's; 0: never grows)",
    )
    # the worker's own arguments
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--servers", default="", help=argparse.SUPPRESS)
    parser.add_argument("--base", default="", help=argparse.SUPPRESS)
    parser.add_argument("--began", type=float, default=0.0, help=argparse.SUPPRESS)
    add_output_args(parser, "keep the state dirs and server stores")
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args))
        return 0
    if args.quick:
        args.nodes, args.processes, args.steady, args.storm = 200, 1, 20.0, 20.0
        args.rate, args.heartbeat = 12.0, 10.0
    return run_main(SCENARIO, lambda: bench(args), lambda f: report(args, f))


if __name__ == "__main__":
    sys.exit(main())
