"""nagios: Choria's Nagios plugin watcher, with Choria's semantics.

``plugin`` is a command line run like a health ``command`` probe (Nagios plugin protocol;
no shell). Each result names the transition after its status, ``OK``, ``WARNING``,
``CRITICAL`` or ``UNKNOWN``, and the machine fires it when it defines a transition of that
name; otherwise OK fires ``success_transition``, CRITICAL and UNKNOWN fire
``fail_transition`` and WARNING fires nothing. There are no thresholds: every check fires.
``annotations`` (string values) are carried in the payload as in Choria.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.health import DEFAULT_TIMEOUT, ResultLog, observe
from steward.watchers.probes import CommandProbe, Status

TYPE = "nagios"

OUTCOMES = {
    Status.OK: Outcome.SUCCESS,
    Status.WARNING: Outcome.UNCHANGED,
    Status.CRITICAL: Outcome.FAILURE,
    Status.UNKNOWN: Outcome.FAILURE,
}


@dataclass(frozen=True)
class NagiosProperties:
    probe: CommandProbe
    annotations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        if fields.has("builtin"):
            fields.raw("builtin")
            fields.error("builtin", "Choria's builtin checks are not supported; use 'plugin'")
        command = fields.command_line("plugin")
        timeout = fields.duration("timeout", minimum=0.001, minimum_text="1ms")
        annotations: list[tuple[str, str]] = []
        a = fields.mapping("annotations")
        if a is not None:
            for key in list(a.keys()):
                value = a.string(key, non_empty=False)
                if value is not None:
                    annotations.append((key, value))
            a.finish()
        plugin, argv = command or ("", ("",))
        props = cls(CommandProbe(plugin, argv, timeout or DEFAULT_TIMEOUT), tuple(annotations))
        fields.finish(" in nagios properties")
        return props


class NagiosWatcher(Watcher):
    TYPE = TYPE
    Properties = NagiosProperties

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.results = ResultLog()

    @property
    def props(self) -> NagiosProperties:
        p = self.spec.properties
        assert isinstance(p, NagiosProperties)
        return p

    async def check(self) -> WatcherResult:
        started = self.clock.monotonic()
        report = await observe(self.props.probe, self)
        payload = self.results.payload(report, self.clock.time(), self.clock.monotonic() - started)
        payload["plugin"] = self.props.probe.command
        payload["annotations"] = dict(self.props.annotations)
        return WatcherResult(
            OUTCOMES[report.status],
            f"{report.status.value}: {report.output}",
            payload=payload,
            transition=report.status.value,
        )
