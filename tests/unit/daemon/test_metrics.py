"""Metrics: the scrape-time collector over a real Node (fake store and clock), the counters
machines feed through their observer, perfdata parsing, and the endpoint on port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from steward.broker.connection import NatsConnection
from steward.broker.settings import NatsSettings
from steward.daemon.metrics import (
    MachineMetrics,
    MetricsServer,
    ReloadStats,
    StewardCollector,
    new_registry,
    perfdata_values,
)
from steward.daemon.node import Node
from steward.errors import TransitionRejected
from steward.events.outbox import OutboxStats
from steward.events.publisher import NatsPublisher
from steward.machine.spec import MachineSpec, TransitionSpec
from steward.watchers.base import Outcome, WatcherResult
from tests.support.fakes import FakeClock, ScriptedWatcher, node_services, settle
from tests.support.machines import w

TRANSITIONS = (
    TransitionSpec("go", ("idle",), "busy"),
    TransitionSpec("rest", ("busy",), "idle"),
)


def spec(name: str, *watchers: Any) -> MachineSpec:
    return MachineSpec(
        name=name,
        version="1.2.3",
        initial_state="idle",
        transitions=TRANSITIONS,
        watchers=tuple(watchers),
        path=Path(f"{name}.yaml"),
        directory=Path(),
        checksum=name,
    )


@dataclass
class FakeOutbox:
    stats: OutboxStats

    def outbox_snapshot(self) -> OutboxStats:
        return self.stats


class Scene:
    """A node whose machines report to MachineMetrics, and a collector over it."""

    def __init__(
        self, nats: NatsConnection | None = None, publisher: NatsPublisher | None = None
    ) -> None:
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.counters = MachineMetrics(self.registry)
        self.outbox = FakeOutbox(
            OutboxStats(events=3, bytes=1200, dropped=7, dropped_by_kind={"watcher": 5})
        )
        self.reloads = ReloadStats(rescans=2, started=1, rejected=1, rejected_files=1)
        services = node_services(clock=self.clock, observer=self.counters)
        self.events = services.events
        self.node = Node(services)
        self.registry.register(
            StewardCollector(
                self.node.machines,
                clock=self.clock,
                outbox=self.outbox,
                events=self.events.local,
                reloads=self.reloads,
                nats=nats,
                publisher=publisher,
            )
        )

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def families(self) -> dict[str, Any]:
        text = generate_latest(self.registry).decode()
        return {f.name: f for f in text_string_to_metric_families(text)}


@pytest.fixture
async def scene() -> AsyncIterator[Scene]:
    s = Scene()
    yield s
    await s.node.stop()


async def test_state_gauge_is_one_for_the_current_state_only(scene: Scene) -> None:
    await scene.node.add(spec("m"))
    assert scene.value("steward_machine_state", machine="m", state="idle") == 1
    assert scene.value("steward_machine_state", machine="m", state="busy") == 0
    await scene.node.get("m").fire("go")
    assert scene.value("steward_machine_state", machine="m", state="idle") == 0
    assert scene.value("steward_machine_state", machine="m", state="busy") == 1
    assert scene.value("steward_machine_info", machine="m", version="1.2.3") == 1
    assert scene.value("steward_machine_seq", machine="m") == 1


async def test_time_in_state_is_computed_at_scrape_time(scene: Scene) -> None:
    await scene.node.add(spec("m"))
    assert scene.value("steward_machine_state_seconds", machine="m") == 0
    await scene.clock.advance(42)
    assert scene.value("steward_machine_state_seconds", machine="m") == 42
    await scene.node.get("m").fire("go")
    await scene.clock.advance(5)
    assert scene.value("steward_machine_state_seconds", machine="m") == 5


async def test_transitions_by_name_and_rejections(scene: Scene) -> None:
    await scene.node.add(spec("m"))
    m = scene.node.get("m")
    await m.fire("go")
    await m.fire("rest")
    await m.fire("go")
    with pytest.raises(TransitionRejected):
        await m.fire("go")
    assert scene.value("steward_transitions_total", machine="m", transition="go") == 2
    assert scene.value("steward_transitions_total", machine="m", transition="rest") == 1
    assert scene.value("steward_transitions_rejected_total", machine="m") == 1
    assert m.seq == 3


async def test_watcher_runs_by_outcome_duration_and_perfdata(scene: Scene) -> None:
    await scene.node.add(spec("m", w("probe", states=("idle",), success="go")))
    await settle()
    probe = scene.node.get("m").watchers[0]
    assert isinstance(probe, ScriptedWatcher)
    labels = {"machine": "m", "watcher": "probe", "type": "scripted"}
    assert scene.value("steward_watcher_active", **labels) == 1
    await scene.clock.advance(0.3)  # the check takes 0.3 s of the fake clock
    perfdata = [
        {"label": "load1", "value": 0.5, "uom": None},
        {"label": "disk", "value": 81, "uom": "%", "warn": 80},
        {"label": "state", "value": "ok"},  # not numeric: ignored
    ]
    probe.results.put_nowait(WatcherResult(Outcome.SUCCESS, "ok", payload={"perfdata": perfdata}))
    await settle()
    assert scene.value("steward_watcher_runs_total", **labels, outcome="success") == 1
    assert scene.value("steward_watcher_run_seconds_count", **labels) == 1
    assert scene.value("steward_watcher_run_seconds_sum", **labels) == pytest.approx(0.3)
    assert scene.value("steward_watcher_run_seconds_bucket", **labels, le="0.25") == 0
    assert scene.value("steward_watcher_run_seconds_bucket", **labels, le="0.5") == 1
    perf = {"machine": "m", "watcher": "probe"}
    assert scene.value("steward_health_perfdata", **perf, label="load1") == 0.5
    assert scene.value("steward_health_perfdata", **perf, label="disk") == 81
    assert scene.value("steward_health_perfdata", **perf, label="state") is None
    assert scene.node.get("m").state == "busy"  # the success transition fired
    assert scene.value("steward_watcher_active", **labels) == 0  # probe watches idle only


async def test_forget_drops_a_removed_machines_series(scene: Scene) -> None:
    await scene.node.add(spec("gone"))
    await scene.node.add(spec("kept"))
    await scene.node.get("gone").fire("go")
    await scene.node.get("kept").fire("go")
    await scene.node.remove("gone")
    scene.counters.forget("gone")
    text = generate_latest(scene.registry).decode()
    assert 'machine="gone"' not in text
    assert scene.value("steward_transitions_total", machine="kept", transition="go") == 1


async def test_events_and_reload_families(scene: Scene) -> None:
    await scene.node.add(spec("m"))
    assert scene.value("steward_events_emitted_total") == scene.events.local.emitted > 0
    assert scene.value("steward_events_outbox") == 3
    assert scene.value("steward_events_outbox_bytes") == 1200
    # per kind; what an older steward dropped (before kinds were counted) is "unknown"
    assert scene.value("steward_events_dropped_total", kind="watcher") == 5
    assert scene.value("steward_events_dropped_total", kind="transition") == 0
    assert scene.value("steward_events_dropped_total", kind="lifecycle") == 0
    assert scene.value("steward_events_dropped_total", kind="unknown") == 2
    assert scene.value("steward_reload_rescans_total") == 2
    assert scene.value("steward_reload_machines_total", action="started") == 1
    assert scene.value("steward_reload_machines_total", action="removed") == 0
    assert scene.value("steward_reload_rejected_total") == 1
    assert scene.value("steward_reload_rejected_files") == 1
    assert scene.value("steward_reload_failures_total") == 0
    # without NATS configured there are no NATS series at all
    assert not [name for name in scene.families() if name.startswith("steward_nats")]


async def test_nats_families_read_the_connection_and_publisher_state() -> None:
    nats = NatsConnection(NatsSettings(servers=("nats://127.0.0.1:1",)))  # never started
    state = nats.state
    state.connected, state.reconnects, state.disconnects, state.errors = True, 2, 2, 1
    publisher = NatsPublisher(
        nats, FakeOutbox(OutboxStats(0, 0, 0)), asyncio.Event(), stream=None, stream_subjects=[]
    )
    publisher.published = 12
    s = Scene(nats=nats, publisher=publisher)
    assert s.value("steward_nats_connected") == 1
    assert s.value("steward_events_published_total") == 12
    assert s.value("steward_nats_reconnects_total") == 2
    assert s.value("steward_nats_errors_total") == 1
    state.connected = False
    assert s.value("steward_nats_connected") == 0


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, {}),
        ({"perfdata": "load=1"}, {}),
        ({"perfdata": [{"label": "a", "value": 1}, {"label": "a", "value": 2}]}, {"a": 2.0}),
        ({"perfdata": [{"label": "a", "value": True}, {"value": 1}, {"label": ""}]}, {}),
        ({"perfdata": [{"label": "nan", "value": float("nan")}, "x", None]}, {}),
        ({"perfdata": [{"label": "t", "value": -3, "uom": "s", "min": 0}]}, {"t": -3.0}),
    ],
)
def test_perfdata_values(payload: dict[str, Any], expected: dict[str, float]) -> None:
    assert perfdata_values(payload) == expected


async def test_endpoint_on_port_zero_serves_its_own_registry() -> None:
    servers = []
    for i in range(2):  # two daemons in one process, each with its own registry
        registry = new_registry()
        MachineMetrics(registry).rejected(f"m{i}", "go")
        server = MetricsServer(registry, "127.0.0.1", 0)
        await server.start()
        servers.append(server)
    try:
        assert servers[0].port != 0 and servers[0].port != servers[1].port
        async with aiohttp.ClientSession() as session:
            for i, server in enumerate(servers):
                async with session.get(f"http://{server.listen}/metrics") as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain; version=")
                    text = await response.text()
                families = {f.name for f in text_string_to_metric_families(text)}
                assert {"steward_transitions_rejected", "process_resident_memory_bytes"} <= families
                assert f'machine="m{i}"' in text and f'machine="m{1 - i}"' not in text
    finally:
        for server in servers:
            await server.stop()


async def test_endpoint_on_a_taken_port_raises_oserror() -> None:
    first = MetricsServer(new_registry(), "127.0.0.1", 0)
    await first.start()
    try:
        second = MetricsServer(new_registry(), "127.0.0.1", first.port)
        with pytest.raises(OSError):
            await second.start()
    finally:
        await first.stop()
