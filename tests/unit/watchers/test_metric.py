"""The metric watcher with real commands: Choria's JSON and Nagios perfdata, its labels, the
machine data it keeps, what it exposes to Prometheus, and its failures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from steward.machine.spec import WatcherSpec
from steward.templates import Template
from steward.watchers.base import Outcome
from steward.watchers.metric import MetricProperties, MetricWatcher, prometheus_samples
from tests.support.fakes import fake_context
from tests.support.machines import Handle, machine_yaml, messages, parse, script

CHORIA = """\
echo '
{
  "labels": {"unique": "u", "dupe": "d"},
  "metrics": {"v1": 1.0, "v2": 1.1}
}'
"""
NAGIOS = (
    "echo 'OK: last run 3 minutes ago|time_since_last_run=237s;1;1;0 failed_resources=0;;;0 "
    "last_run_duration=59.67;;;0'\n"
)


def make(
    tmp_path: Path, command: str, data: dict[str, Any] | None = None, **props: Any
) -> MetricWatcher:
    properties = MetricProperties(command=Template.parse(command), **props)
    spec = WatcherSpec(name="Load Avg", type="metric", properties=properties)
    return MetricWatcher(spec, Handle(tmp_path, data), fake_context(tmp_path))


async def test_choria_json_with_labels_configured_labels_win(tmp_path: Path) -> None:
    script(tmp_path, "metric.sh", CHORIA)
    result = await make(tmp_path, "metric.sh", labels={"dupe": "w"}).check()
    assert result.outcome is Outcome.SUCCESS
    assert result.payload["labels"] == {"format": "choria", "unique": "u", "dupe": "w"}
    assert result.payload["metrics"] == {"v1": 1.0, "v2": 1.1}
    assert result.data is None  # store is off


async def test_nagios_perfdata(tmp_path: Path) -> None:
    script(tmp_path, "nagios.sh", NAGIOS)
    result = await make(tmp_path, "nagios.sh", labels={"dupe": "w"}).check()
    assert result.outcome is Outcome.SUCCESS
    assert result.payload["labels"] == {"format": "nagios", "dupe": "w"}
    assert result.payload["metrics"] == {
        "time_since_last_run": 237.0,
        "failed_resources": 0.0,
        "last_run_duration": 59.67,
    }


async def test_store_keeps_other_watchers_readings(tmp_path: Path) -> None:
    script(tmp_path, "metric.sh", CHORIA)
    other = {"metric": {"disk": {"labels": {}, "metrics": {"used": 3.0}, "time": 1}}}
    result = await make(tmp_path, "metric.sh", data=other, store=True).check()
    assert result.data is not None
    kept = result.data["metric"]
    assert kept["disk"] == other["metric"]["disk"]
    assert kept["Load Avg"]["metrics"] == {"v1": 1.0, "v2": 1.1}
    assert isinstance(kept["Load Avg"]["time"], int)


async def test_failures_carry_no_values(tmp_path: Path) -> None:
    script(tmp_path, "bad.sh", 'echo \'{"metrics": {"v": "high"}}\'\n')
    script(tmp_path, "exit.sh", "echo broken >&2; exit 2\n")
    script(tmp_path, "slow.sh", "sleep 5\n")
    bad = await make(tmp_path, "bad.sh").check()
    assert bad.outcome is Outcome.FAILURE
    assert bad.detail == "output is not metrics: metrics must be an object of numbers"
    exited = await make(tmp_path, "exit.sh").check()
    assert (exited.outcome, exited.detail) == (Outcome.FAILURE, "exit code 2: broken")
    slow = await make(tmp_path, "slow.sh", timeout=0.2).check()
    assert (slow.outcome, slow.detail) == (Outcome.FAILURE, "timed out after 0.2s")
    missing = await make(tmp_path, "nowhere.sh").check()
    assert missing.outcome is Outcome.ERROR
    for result in (bad, exited, slow, missing):
        assert result.payload["metrics"] == {}


async def test_prometheus_samples_use_choria_names_and_a_machine_label(tmp_path: Path) -> None:
    script(tmp_path, "metric.sh", CHORIA)
    watcher = make(tmp_path, "metric.sh", labels={"Odd Label": "Some Value"})
    assert list(prometheus_samples("m1", watcher)) == []  # nothing before the first check
    watcher.last_result = await watcher.check()
    samples = sorted(prometheus_samples("m1", watcher))
    labels = {
        "format": "choria",
        "unique": "u",
        "dupe": "d",
        "odd_label": "Some Value",
        "machine": "m1",
    }
    assert samples == [
        ("choria_machine_metric_watcher_load_avg_v1", labels, 1.0),
        ("choria_machine_metric_watcher_load_avg_v2", labels, 1.1),
    ]
    skipped = make(tmp_path, "metric.sh", skip_prometheus=True)
    skipped.last_result = watcher.last_result
    assert list(prometheus_samples("m1", skipped)) == []


def test_interval_in_properties_wins_and_defaults_to_choria_s() -> None:
    spec = parse(machine_yaml("metric", "command: check.sh", "interval: 30s"))
    props = spec.watchers[0].properties
    assert isinstance(props, MetricProperties)
    assert props.interval == 30.0
    assert props.timeout == 1.0  # Choria's fixed timeout


def test_bad_properties_are_load_errors() -> None:
    found = messages(
        machine_yaml(
            "metric",
            "command: check.sh",
            "interval: 500ms",
            "labels: {machine: x}",
            "graphite_hots: g",
        )
    )
    assert (
        found[0] == "m.yaml:17:17: watchers[0].properties.interval: must be at least 1s, got 500ms"
    )
    assert "labels.machine: the label 'machine' is steward's" in found[1]
    assert "unknown field 'graphite_hots' in metric properties" in found[2]


async def test_graphite_gets_plaintext_lines(tmp_path: Path) -> None:
    script(tmp_path, "metric.sh", CHORIA)
    received: list[bytes] = []
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read())
        writer.close()
        done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        watcher = make(
            tmp_path,
            "metric.sh",
            graphite_host=Template.parse("127.0.0.1"),
            graphite_port=Template.parse(str(port)),
        )
        result = await watcher.check()
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        server.close()
    assert result.payload["graphite_error"] is None
    lines = sorted(received[0].decode().splitlines())
    stamp = result.payload["time"]
    assert lines == [
        f"choria.Load-Avg.runtime 0.000000 {stamp}",
        f"choria.Load-Avg.v1 1.000000 {stamp}",
        f"choria.Load-Avg.v2 1.100000 {stamp}",
    ]
    unreachable = make(
        tmp_path,
        "metric.sh",
        graphite_host=Template.parse("127.0.0.1"),
        graphite_port=Template.parse(str(port)),
    )
    after = await unreachable.check()  # the server is closed: values still count
    assert after.outcome is Outcome.SUCCESS
    assert after.payload["graphite_error"]
