"""Prometheus metrics: one registry per daemon, served over HTTP (loopback by default).

Most values are read from the daemon's live objects when Prometheus scrapes
(``StewardCollector``): machine states, time in state, watcher activity, health perfdata,
outbox, NATS and reload counts. What cannot be read back later is counted as it happens
(``MachineMetrics``, the machines' ``MachineObserver``, in plain dicts read at scrape time
too): transitions by name, rejected transitions, watcher runs by outcome and their durations.
The registry is never the module-level default, so several daemons (tests) can run in one process.

    GET /metrics    the text exposition format
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from steward.broker.link import NatsLink, NoNats
from steward.clock import Clock
from steward.daemon.httpd import HttpServer, Request, Response, Routes
from steward.daemon.prometheus import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    GCCollector,
    HistogramMetricFamily,
    Metric,
    PlatformCollector,
    ProcessCollector,
    floatToGoString,
    generate_latest,
)
from steward.events.envelope import EventKind
from steward.events.outbox import OutboxStats
from steward.events.publisher import NoPublisher, Publisher
from steward.machine.runtime import RunningMachine, TransitionResult
from steward.watchers.base import Watcher, WatcherResult

log = logging.getLogger("steward.metrics")

# watcher run durations: a stat or timer takes milliseconds, an exec check up to minutes
RUN_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass
class ReloadStats:
    """What the daemon's rescans did (the rescan counts them; metrics and status read them)."""

    rescans: int = 0
    failures: int = 0  # the directory could not be read, or a machine could not be started
    started: int = 0
    reloaded: int = 0
    removed: int = 0
    rejected: int = 0  # invalid machine files found (once per content)
    rejected_files: int = 0  # invalid machine files right now

    def as_dict(self) -> dict[str, int]:
        return {
            "rescans": self.rescans,
            "failures": self.failures,
            "started": self.started,
            "reloaded": self.reloaded,
            "removed": self.removed,
            "rejected": self.rejected,
            "rejected_files": self.rejected_files,
        }


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and garbage-collector collectors on it."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


BUCKET_LABELS = [str(floatToGoString(b)) for b in RUN_BUCKETS] + ["+Inf"]  # type: ignore[no-untyped-call]


@dataclass(slots=True)
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * (len(RUN_BUCKETS) + 1))  # +Inf last
    total: float = 0.0


@dataclass(slots=True)
class _Counts:
    """One machine's counters."""

    transitions: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    runs: dict[tuple[str, str, str], int] = field(default_factory=dict)  # watcher, type, outcome
    seconds: dict[tuple[str, str], _Histogram] = field(default_factory=dict)  # watcher, type


class MachineMetrics:
    """The counters a machine feeds as things happen; a ``MachineObserver`` and a collector.

    Plain dicts of ints (and one small list per watcher for its run-time histogram), turned
    into metric families at scrape time: prometheus-client's labelled Counter/Histogram
    children cost ~20 objects with a lock each per watcher, about 10 MiB per 1,000 machines.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._machines: dict[str, _Counts] = {}
        registry.register(self)

    def _counts(self, machine: str) -> _Counts:
        counts = self._machines.get(machine)
        if counts is None:
            counts = self._machines[machine] = _Counts()
        return counts

    # MachineObserver ---------------------------------------------------------------------
    def transitioned(self, machine: str, result: TransitionResult) -> None:
        transitions = self._counts(machine).transitions
        transitions[result.transition] = transitions.get(result.transition, 0) + 1

    def rejected(self, machine: str, transition: str) -> None:
        self._counts(machine).rejected += 1

    def watcher_ran(
        self, machine: str, watcher: Watcher, result: WatcherResult, duration: float
    ) -> None:
        counts = self._counts(machine)
        key = (watcher.name, watcher.TYPE, result.outcome.value)
        counts.runs[key] = counts.runs.get(key, 0) + 1
        hist = counts.seconds.get(key[:2])
        if hist is None:
            hist = counts.seconds[key[:2]] = _Histogram()
        hist.buckets[bisect.bisect_left(RUN_BUCKETS, duration)] += 1  # le: first bound >= it
        hist.total += duration

    # -------------------------------------------------------------------------------------
    def forget(self, machine: str) -> None:
        """Drop a removed machine's series."""
        self._machines.pop(machine, None)

    def collect(self) -> Iterable[Metric]:
        transitions = CounterMetricFamily(
            "steward_transitions",
            "Transitions committed, by machine and transition name.",
            labels=["machine", "transition"],
        )
        rejected = CounterMetricFamily(
            "steward_transitions_rejected",
            "Transitions refused because they are not valid from the current state.",
            labels=["machine"],
        )
        runs = CounterMetricFamily(
            "steward_watcher_runs",
            "Watcher checks finished, by outcome (success, failure, unchanged, error).",
            labels=["machine", "watcher", "type", "outcome"],
        )
        seconds = HistogramMetricFamily(
            "steward_watcher_run_seconds",
            "How long watcher checks took.",
            labels=["machine", "watcher", "type"],
        )
        for machine, counts in self._machines.items():
            for name, count in counts.transitions.items():
                transitions.add_metric([machine, name], count)
            if counts.rejected:
                rejected.add_metric([machine], counts.rejected)
            for (watcher, wtype, outcome), count in counts.runs.items():
                runs.add_metric([machine, watcher, wtype, outcome], count)
            for (watcher, wtype), hist in counts.seconds.items():
                cumulative = itertools.accumulate(hist.buckets)
                buckets = list(zip(BUCKET_LABELS, cumulative, strict=True))
                seconds.add_metric([machine, watcher, wtype], buckets, hist.total)
        yield from (transitions, rejected, runs, seconds)


class OutboxCounters(Protocol):
    def outbox_snapshot(self) -> OutboxStats: ...


class EmittedCount(Protocol):
    @property
    def emitted(self) -> int: ...


class StewardCollector:
    """Reads the daemon's live objects at scrape time (on the event loop, like the API)."""

    def __init__(
        self,
        machines: Mapping[str, RunningMachine],
        *,
        clock: Clock,
        outbox: OutboxCounters,
        events: EmittedCount,
        reloads: ReloadStats,
        nats: NatsLink | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self._machines = machines
        self._clock = clock
        self._outbox = outbox
        self._events = events
        self._reloads = reloads
        self._nats = nats if nats is not None else NoNats()
        self._publisher = publisher if publisher is not None else NoPublisher()

    def collect(self) -> Iterable[Metric]:
        machines = list(self._machines.values())
        yield from self._machine_families(machines)
        yield from self._watcher_families(machines)
        yield from self._metric_watcher_families(machines)
        yield from self._event_families()
        yield from self._reload_families()

    def _machine_families(self, machines: list[RunningMachine]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "steward_machine_state",
            "1 for the state the machine is in, 0 for its other states.",
            labels=["machine", "state"],
        )
        seconds = GaugeMetricFamily(
            "steward_machine_state_seconds",
            "Seconds since the machine entered its current state.",
            labels=["machine"],
        )
        seq = GaugeMetricFamily(
            "steward_machine_seq",
            "The machine's transition sequence number (persists across restarts).",
            labels=["machine"],
        )
        info = GaugeMetricFamily(
            "steward_machine_info",
            "Machines running, with their version.",
            labels=["machine", "version"],
        )
        store_error = GaugeMetricFamily(
            "steward_machine_store_error",
            "1 while the machine's state cannot be written to the state database (it runs on "
            "in memory; see store_error in steward status), else 0.",
            labels=["machine"],
        )
        unrecorded = CounterMetricFamily(
            "steward_machine_unrecorded_transitions",
            "Transitions the state database refused when they happened (store errors); they "
            "wait in memory and are written late, in order.",
            labels=["machine"],
        )
        waiting = GaugeMetricFamily(
            "steward_machine_unrecorded_waiting",
            "Transitions waiting in memory for the state database to work again.",
            labels=["machine"],
        )
        lost = CounterMetricFamily(
            "steward_machine_lost_transitions",
            "Transitions never written: the wait in memory overflowed while the store failed.",
            labels=["machine"],
        )
        now = self._clock.time()
        for m in machines:
            for s in m.spec.states:
                state.add_metric([m.name, s], 1.0 if s == m.state else 0.0)
            seconds.add_metric([m.name], max(0.0, now - m.since))
            seq.add_metric([m.name], m.seq)
            info.add_metric([m.name, m.spec.version], 1.0)
            store_error.add_metric([m.name], 1.0 if m.store_error is not None else 0.0)
            unrecorded.add_metric([m.name], m.unrecorded_transitions)
            waiting.add_metric([m.name], m.unrecorded_waiting)
            lost.add_metric([m.name], m.lost_transitions)
        yield from (state, seconds, seq, info, store_error, unrecorded, waiting, lost)

    def _watcher_families(self, machines: list[RunningMachine]) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "steward_watcher_active",
            "1 while the watcher runs (its machine is in a state it watches), else 0.",
            labels=["machine", "watcher", "type"],
        )
        perfdata = GaugeMetricFamily(
            "steward_health_perfdata",
            "Performance data from a watcher's last result (e.g. a Nagios-style health check).",
            labels=["machine", "watcher", "label"],
        )
        for m in machines:
            for w in m.watchers:
                active.add_metric([m.name, w.name, w.TYPE], 1.0 if w.active else 0.0)
                if w.last_result is not None:
                    for label, value in perfdata_values(w.last_result.payload).items():
                        perfdata.add_metric([m.name, w.name, label], value)
        yield from (active, perfdata)

    def _metric_watcher_families(self, machines: list[RunningMachine]) -> Iterator[Metric]:
        """The values of metric watchers' last checks, one gauge family per name (Choria's
        ``choria_machine_metric_watcher_<watcher>_<metric>``); labels vary by watcher."""
        families: dict[str, Metric] = {}
        # the watcher registry imported the metric type's module if a machine has one
        # (importing it here for nothing cost ~0.2 MiB of the daemon's RSS)
        if "steward.watchers.metric" not in sys.modules:
            return
        from steward.watchers import metric as metric_watcher

        for m in machines:
            for w in m.watchers:
                if not isinstance(w, metric_watcher.MetricWatcher):
                    continue
                for name, labels, value in metric_watcher.prometheus_samples(m.name, w):
                    family = families.get(name)
                    if family is None:
                        family = families[name] = Metric(name, "Choria metric watcher", "gauge")
                    family.add_sample(name, labels, value)
        yield from families.values()

    def _event_families(self) -> Iterator[Metric]:
        stats = self._outbox.outbox_snapshot()
        yield CounterMetricFamily(
            "steward_events_emitted", "Events created by this daemon.", self._events.emitted
        )
        yield GaugeMetricFamily(
            "steward_events_outbox", "Events waiting in the outbox for NATS.", stats.events
        )
        yield GaugeMetricFamily(
            "steward_events_outbox_bytes", "Bytes of events waiting in the outbox.", stats.bytes
        )
        dropped = CounterMetricFamily(
            "steward_events_dropped",
            "Events dropped because the outbox was full, lowest priority first, per kind "
            "(kept across restarts).",
            labels=["kind"],
        )
        by_kind = dict(stats.dropped_by_kind)
        counted_before_kinds = stats.dropped - sum(by_kind.values())  # an older steward's drops
        if counted_before_kinds > 0:
            by_kind["unknown"] = by_kind.get("unknown", 0) + counted_before_kinds
        for kind in sorted({*(k.value for k in EventKind), *by_kind}):
            dropped.add_metric([kind], by_kind.get(kind, 0))
        yield dropped
        if not self._nats.configured:  # no NATS series, rather than a false alarm
            return
        nats = self._nats.state
        yield CounterMetricFamily(
            "steward_events_published", "Events NATS confirmed.", self._publisher.published
        )
        yield GaugeMetricFamily(
            "steward_nats_connected", "1 while connected to NATS.", 1.0 if nats.connected else 0.0
        )
        yield CounterMetricFamily(
            "steward_nats_reconnects", "Reconnections to NATS.", nats.reconnects
        )
        yield CounterMetricFamily(
            "steward_nats_disconnects", "Connections to NATS lost.", nats.disconnects
        )
        yield CounterMetricFamily(
            "steward_nats_errors", "NATS connection and publish errors.", nats.errors
        )

    def _reload_families(self) -> Iterator[Metric]:
        r = self._reloads
        yield CounterMetricFamily(
            "steward_reload_rescans", "Rescans of the machines directory.", r.rescans
        )
        yield CounterMetricFamily(
            "steward_reload_failures",
            "Rescans that could not read the machines directory, and machines that could not "
            "be started.",
            r.failures,
        )
        machines = CounterMetricFamily(
            "steward_reload_machines",
            "Machines started, reloaded (changed definition) and removed by rescans.",
            labels=["action"],
        )
        machines.add_metric(["started"], r.started)
        machines.add_metric(["reloaded"], r.reloaded)
        machines.add_metric(["removed"], r.removed)
        yield machines
        yield CounterMetricFamily(
            "steward_reload_rejected",
            "Invalid machine files found (counted once per content).",
            r.rejected,
        )
        yield GaugeMetricFamily(
            "steward_reload_rejected_files", "Machine files rejected right now.", r.rejected_files
        )


def perfdata_values(payload: Mapping[str, Any]) -> dict[str, float]:
    """``payload["perfdata"]``: a list of ``{"label": str, "value": number, "uom": …}``.

    Entries without a label or a numeric value are ignored; a repeated label keeps its last
    value (one series per label).
    """
    out: dict[str, float] = {}
    entries = payload.get("perfdata")
    if not isinstance(entries, list):
        return out
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        label, value = entry.get("label"), entry.get("value")
        if not isinstance(label, str) or not label:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isnan(value):
            out[label] = float(value)
    return out


class MetricsServer:
    """``GET /metrics`` (``httpd``) on the event loop; ``start()`` binds, ``stop()`` closes."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.host = host
        self.port = port  # 0 until start() binds, if 0 was asked for
        self._registry = registry
        routes = Routes()
        routes.get("/metrics")(self._metrics)
        self._server = HttpServer(routes)

    @property
    def listen(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Bind; OSError if the address is taken or cannot be assigned."""
        await self._server.start_tcp(self.host, self.port)
        for sock in self._server.sockets:
            address = sock.getsockname()
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break

    async def stop(self) -> None:
        await self._server.stop()

    async def _metrics(self, _: Request) -> Response:
        return Response(body=generate_latest(self._registry), content_type=CONTENT_TYPE_LATEST)
