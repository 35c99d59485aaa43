"""prometheus_client's registry, metric families and collectors, and the text exposition.

``import prometheus_client`` imports its exposition module, and with it http.server, wsgiref,
urllib.request and email (its own HTTP servers and push-gateway client): ~2.5 MiB of the
daemon's RSS for code the daemon never runs (``httpd`` serves ``/metrics``). So the modules
the daemon uses are imported without the package's ``__init__`` (``steward.submodules``), and
``generate_latest`` here writes the same text format as prometheus_client's
``exposition.generate_latest`` (version 0.0.4 with the ``underscores`` escaping, its default;
the unit tests compare the two byte for byte), with its name-escaping helpers from
``prometheus_client.openmetrics.exposition``, which imports nothing heavy.
"""

from __future__ import annotations

from steward.submodules import import_submodules

import_submodules(
    "prometheus_client",
    (
        "registry",
        "metrics_core",
        "utils",
        "gc_collector",
        "platform_collector",
        "process_collector",
        "openmetrics.exposition",
    ),
)

from prometheus_client.gc_collector import GCCollector  # noqa: E402
from prometheus_client.metrics_core import (  # noqa: E402
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import (  # noqa: E402
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.platform_collector import PlatformCollector  # noqa: E402
from prometheus_client.process_collector import ProcessCollector  # noqa: E402
from prometheus_client.registry import Collector, CollectorRegistry  # noqa: E402
from prometheus_client.samples import Sample  # noqa: E402
from prometheus_client.utils import floatToGoString  # noqa: E402

__all__ = [
    "CONTENT_TYPE_LATEST",
    "CollectorRegistry",
    "CounterMetricFamily",
    "GCCollector",
    "GaugeMetricFamily",
    "HistogramMetricFamily",
    "Metric",
    "PlatformCollector",
    "ProcessCollector",
    "floatToGoString",
    "generate_latest",
]

# prometheus_client's CONTENT_TYPE_LATEST (CONTENT_TYPE_PLAIN_1_0_0 since 0.22)
CONTENT_TYPE_LATEST = "text/plain; version=1.0.0; charset=utf-8"

# OpenMetrics families written under the Prometheus text format's names
TYPE_NAMES = {
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}
OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")  # moved to gauges of their own


def generate_latest(registry: Collector) -> bytes:
    """The registry's metrics in the Prometheus text format, UTF-8."""
    output: list[str] = []
    for metric in registry.collect():
        try:
            name = metric.name
            if metric.type == "counter":
                name += "_total"
            elif metric.type == "info":
                name += "_info"
            kind = TYPE_NAMES.get(metric.type, metric.type)
            output.append(_header(name, metric.documentation, kind))
            moved: dict[str, list[str]] = {}
            for sample in metric.samples:
                suffix = _openmetrics_suffix(metric.name, sample.name)
                if suffix is None:
                    output.append(_sample_line(sample))
                else:
                    moved.setdefault(suffix, []).append(_sample_line(sample))
        except Exception as exc:
            exc.args = (exc.args or ("",)) + (metric,)
            raise
        for suffix, lines in sorted(moved.items()):
            output.append(_header(metric.name + suffix, metric.documentation, "gauge"))
            output.extend(lines)
    return "".join(output).encode("utf-8")


def _openmetrics_suffix(family: str, sample: str) -> str | None:
    for suffix in OPENMETRICS_SUFFIXES:
        if sample == family + suffix:
            return suffix
    return None


def _header(name: str, documentation: str, kind: str) -> str:
    escaped = escape_metric_name(name, UNDERSCORES)
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {escaped} {help_text}\n# TYPE {escaped} {kind}\n"


def _sample_line(sample: Sample) -> str:
    labels = ""
    if sample.labels:
        pairs = ",".join(
            f'{escape_label_name(k, UNDERSCORES)}="{_escape_value(v)}"'
            for k, v in sorted(sample.labels.items())
        )
        labels = f"{{{pairs}}}"
    timestamp = ""
    if sample.timestamp is not None:
        timestamp = f" {int(float(sample.timestamp) * 1000):d}"  # milliseconds
    name = escape_metric_name(sample.name, UNDERSCORES)
    value = floatToGoString(sample.value)  # type: ignore[no-untyped-call]
    return f"{name}{labels} {value}{timestamp}\n"


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
