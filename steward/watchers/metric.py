"""metric: run a command that prints metrics; expose them on ``/metrics``, optionally keep them
in the machine's data and send them to Graphite.

The command's stdout is either Choria's metric JSON, recognised by its leading ``{``::

    {"labels": {"unique": "u"}, "metrics": {"v1": 1.0, "v2": 1.1}}

or Nagios plugin output whose perfdata become the metrics (``steward.watchers.plugin_output``).
The labels are ``format`` (``choria`` or ``nagios``), then the command's labels, then the
configured ``labels`` (which win). The values are not pushed anywhere: the daemon's metrics
collector reads each metric watcher's last result when Prometheus scrapes, through
``prometheus_samples`` below, under Choria's names
(``choria_machine_metric_watcher_<watcher>_<metric>``) plus a ``machine`` label.

A command that cannot run, times out (``timeout``, Choria's fixed 1s by default), exits
non-zero or prints something that is not metrics is a failure (``fail_transition``), with no
values; a good result is a success.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from steward.machine.source import Fields
from steward.processes import first_line, resolve_program
from steward.templates import Template
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.exec import command_environment
from steward.watchers.plugin_output import parse_plugin_output

TYPE = "metric"
DEFAULT_INTERVAL = 1.0  # Choria's: its minimum, used when none is set
DEFAULT_TIMEOUT = 1.0  # Choria's fixed command timeout
GRAPHITE_TIMEOUT = 2.0
DATA_KEY = "metric"  # machine data: {"metric": {<watcher>: {labels, metrics, time}}}
PROMETHEUS_PREFIX = "choria_machine_metric_watcher_"
RESERVED_LABEL = "machine"
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class MetricProperties:
    command: Template
    interval: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    labels: Mapping[str, str] = field(default_factory=dict)
    skip_prometheus: bool = False
    store: bool = False
    http: bool = False
    graphite_host: Template | None = None
    graphite_port: Template | None = None
    graphite_prefix: Template | None = None

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        command = fields.template("command", required=True)
        interval = fields.duration("interval", minimum=1.0, minimum_text="1s")
        timeout = fields.duration("timeout", minimum=0.001, minimum_text="1ms")
        props = cls(
            command=command or Template(""),
            interval=interval,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            labels=_labels(fields),
            skip_prometheus=fields.boolean("skip_prometheus", False),
            store=fields.boolean("store", False),
            http=fields.boolean("http", False),
            graphite_host=fields.template("graphite_host"),
            graphite_port=fields.template("graphite_port"),
            graphite_prefix=fields.template("graphite_prefix"),
        )
        fields.finish(" in metric properties")
        return props


def _labels(fields: Fields) -> dict[str, str]:
    section = fields.mapping("labels")
    if section is None:
        return {}
    out: dict[str, str] = {}
    for name in list(section.keys()):
        value = section.string(name, non_empty=False)
        if name == RESERVED_LABEL:
            section.error(name, f"the label {RESERVED_LABEL!r} is steward's (the machine name)")
        elif value is not None:
            out[name] = value
    return out


@dataclass(frozen=True)
class Reading:
    """One command's metrics: Choria's ``{labels, metrics, time}``."""

    labels: dict[str, str]
    metrics: dict[str, float]
    time: int

    def as_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "metrics": self.metrics, "time": self.time}


def parse_metrics(output: str) -> tuple[str, dict[str, str], dict[str, float]]:
    """(format, labels, metrics) from a command's output; ValueError if it is not metrics."""
    if output.lstrip().startswith("{"):
        doc = json.loads(output)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        labels, metrics = doc.get("labels") or {}, doc.get("metrics") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError("labels must be an object of strings")
        if not isinstance(metrics, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()
        ):
            raise ValueError("metrics must be an object of numbers")
        return "choria", dict(labels), {k: float(v) for k, v in metrics.items()}
    parsed = parse_plugin_output(output)
    return "nagios", {}, {p.label: p.value for p in parsed.perfdata}


class MetricWatcher(Watcher):
    TYPE = TYPE
    Properties = MetricProperties
    default_interval = DEFAULT_INTERVAL

    @property
    def props(self) -> MetricProperties:
        p = self.spec.properties
        assert isinstance(p, MetricProperties)
        return p

    @property
    def interval(self) -> float | None:
        """``properties.interval`` (Choria's place), else the watcher's ``interval``."""
        return self.props.interval if self.props.interval is not None else super().interval

    async def check(self) -> WatcherResult:
        props = self.props
        facts, data = self.context.node.facts.current, self.machine.data_snapshot()
        try:
            command = props.command.render(facts, data)
            argv = shlex.split(command)
        except ValueError as exc:
            return self._failure(Outcome.ERROR, f"cannot build the command: {exc}", "")
        if not argv:
            return self._failure(Outcome.ERROR, "the command is empty", command)
        env = command_environment(self.machine, self.name)
        program = resolve_program(argv[0], self.machine.directory, env["PATH"])
        if program is None:
            return self._failure(Outcome.ERROR, f"command not found: {argv[0]}", command)
        run = await self.context.processes.run(
            (program, *argv[1:]), self.machine.directory, env, props.timeout
        )
        if run.error:
            return self._failure(Outcome.ERROR, run.error, command)
        if run.timed_out:
            return self._failure(Outcome.FAILURE, f"timed out after {props.timeout:g}s", command)
        if run.exit_code != 0:
            line = first_line(run.stderr or run.stdout)
            detail = f"exit code {run.exit_code}" + (f": {line}" if line else "")
            return self._failure(Outcome.FAILURE, detail, command)
        try:
            fmt, labels, metrics = parse_metrics(run.stdout)
        except ValueError as exc:
            return self._failure(Outcome.FAILURE, f"output is not metrics: {exc}", command)
        reading = Reading(
            {"format": fmt, **labels, **props.labels}, metrics, int(self.clock.time())
        )
        graphite_error = await self._graphite(reading)
        detail = f"{len(metrics)} metrics ({fmt})"
        if graphite_error:
            detail += f"; graphite: {graphite_error}"
        store = None
        if props.store:  # beside the other metric watchers' readings, not instead of them
            kept = data.get(DATA_KEY)
            kept = kept if isinstance(kept, dict) else {}
            store = {DATA_KEY: {**kept, self.name: reading.as_dict()}}
        payload = {**reading.as_dict(), "command": command, "graphite_error": graphite_error}
        return WatcherResult(Outcome.SUCCESS, detail, data=store, payload=payload)

    def _failure(self, outcome: Outcome, detail: str, command: str) -> WatcherResult:
        payload: dict[str, Any] = {
            "labels": {},
            "metrics": {},
            "time": None,
            "command": command,
            "error": detail,
        }
        return WatcherResult(outcome, detail, payload=payload)

    async def _graphite(self, reading: Reading) -> str | None:
        """Send the metrics to Graphite's plaintext port when configured; the error, if any."""
        props = self.props
        if props.graphite_host is None or props.graphite_port is None or not reading.metrics:
            return None
        facts, data = self.context.node.facts.current, self.machine.data_snapshot()
        try:
            host = props.graphite_host.render(facts, data)
            port = int(props.graphite_port.render(facts, data))
            default = "choria." + self.name.replace(" ", "-")
            prefix = props.graphite_prefix.render(facts, data) if props.graphite_prefix else default
        except ValueError as exc:
            return str(exc)
        values = {**reading.metrics, "runtime": self.last_duration or 0.0}
        lines = "".join(f"{prefix}.{k} {v:f} {reading.time}\n" for k, v in values.items())
        writer = None
        try:
            async with asyncio.timeout(GRAPHITE_TIMEOUT):
                _, writer = await asyncio.open_connection(host, port)
                writer.write(lines.encode())
                await writer.drain()
        except (OSError, TimeoutError) as exc:
            return f"{host}:{port}: {exc or type(exc).__name__}"
        finally:
            if writer is not None:
                writer.close()
        return None


def prometheus_samples(
    machine: str, watcher: MetricWatcher
) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) for each value of the watcher's last check, under Choria's names.

    Read from the last result's state (``labels``, ``metrics``): a failed check has none.
    """
    last = watcher.last_result
    if last is None or watcher.props.skip_prometheus:
        return
    metrics, given = last.payload.get("metrics"), last.payload.get("labels")
    if not isinstance(metrics, Mapping) or not isinstance(given, Mapping):
        return
    base = PROMETHEUS_PREFIX + _prom_name(watcher.name.lower().replace(" ", "_"))
    labels = {_label_name(k): str(v) for k, v in given.items() if k != RESERVED_LABEL}
    labels[RESERVED_LABEL] = machine
    for metric, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield f"{base}_{_prom_name(metric)}", labels, float(value)


def _prom_name(text: str) -> str:
    return _NAME_BAD.sub("_", text)


def _label_name(text: str) -> str:
    name = _LABEL_BAD.sub("_", text.lower())
    return f"_{name}" if not name or name[0].isdigit() else name
