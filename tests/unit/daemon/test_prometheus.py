"""The text exposition without prometheus_client's HTTP modules: byte for byte what
prometheus_client's own ``generate_latest`` writes, for every kind of family."""

from __future__ import annotations

from collections.abc import Iterable

import prometheus_client
import pytest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.metrics_core import Metric

from steward.daemon import prometheus
from steward.daemon.metrics import new_registry
from tests.support.fresh import run_fresh


class Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def every_kind() -> list[Metric]:
    counter = CounterMetricFamily(
        "jobs", 'Jobs done, "quoted" \\ and\nnewline.', labels=["machine", "weird.label"]
    )
    counter.add_metric(['a\\b\n"c"', "x"], 3, created=1700000000.5)
    counter.add_metric(["é", "y"], 2.5, timestamp=1700000001.25)
    gauge = GaugeMetricFamily("temperature.celsius", "Dotted name.", labels=["zone"])
    gauge.add_metric(["z1"], float("nan"))
    gauge.add_metric(["z2"], float("inf"))
    gauge.add_metric(["z3"], float("-inf"))
    gauge.add_metric(["z4"], 1e-7)
    histogram = HistogramMetricFamily("seconds", "Durations.", labels=["w"])
    histogram.add_metric(["w1"], [("0.1", 1), ("1.0", 4), ("+Inf", 5)], 2.5)
    gauge_histogram = GaugeHistogramMetricFamily(
        "queue", "Gauge histogram.", buckets=[("1", 2), ("+Inf", 3)], gsum_value=7
    )
    summary = SummaryMetricFamily("latency", "Summary.", count_value=4, sum_value=1.5)
    info = InfoMetricFamily("build", "Build info.", value={"version": "1.2", "commit": "abc"})
    stateset = StateSetMetricFamily("mode", "State set.", value={"on": True, "off": False})
    unknown = UnknownMetricFamily("mystery", "Unknown.", value=42)
    empty = CounterMetricFamily("nothing", "No samples.", labels=["a"])
    unlabelled = GaugeMetricFamily("plain", "", value=0)
    return [
        counter,
        gauge,
        histogram,
        gauge_histogram,
        summary,
        info,
        stateset,
        unknown,
        empty,
        unlabelled,
    ]


def test_every_kind_of_family_is_written_as_prometheus_client_writes_it() -> None:
    registry = Families(every_kind())
    ours = prometheus.generate_latest(registry)
    assert ours == prometheus_client.generate_latest(registry)  # type: ignore[arg-type]
    assert b'jobs_total{machine="a\\\\b\\n\\"c\\"",weird_label="x"} 3.0\n' in ours
    assert b"# TYPE jobs_created gauge\n" in ours


def test_the_daemons_registry_is_written_as_prometheus_client_writes_it() -> None:
    # collected once: the process collector's CPU seconds and RSS move between two scrapes
    collected = Families(list(new_registry().collect()))
    assert {m.name for m in collected.families} >= {"process_cpu_seconds", "python_info"}
    ours = prometheus.generate_latest(collected)
    assert ours == prometheus_client.generate_latest(collected)  # type: ignore[arg-type]


def test_the_content_type_is_prometheus_clients() -> None:
    assert prometheus.CONTENT_TYPE_LATEST == prometheus_client.CONTENT_TYPE_LATEST


def test_a_broken_family_is_named_in_the_error() -> None:
    broken = GaugeMetricFamily("broken", "Its sample's value is not a number.")
    broken.add_metric([], "x")  # type: ignore[arg-type]
    with pytest.raises(Exception) as info:
        prometheus.generate_latest(Families([broken]))
    assert info.value.args[-1] is broken


def test_the_metrics_module_loads_no_http_servers() -> None:
    code = """
        import sys
        import steward.daemon.metrics
        heavy = ["prometheus_client", "http.server", "wsgiref", "urllib.request", "email"]
        print(*[name for name in heavy if name in sys.modules] or ["none"])
    """
    stdout = run_fresh(code)
    assert stdout.split() == ["none"]
