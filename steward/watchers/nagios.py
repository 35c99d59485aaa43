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

from steward.errors import Severity
from steward.machine.source import Fields
from steward.watchers import builtins
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.builtins import BUILTINS
from steward.watchers.exec import command_environment
from steward.watchers.health import DEFAULT_TIMEOUT, ResultLog, observe
from steward.watchers.probes import CommandProbe, ProbeReport, Status

TYPE = "nagios"

OUTCOMES = {
    Status.OK: Outcome.SUCCESS,
    Status.WARNING: Outcome.UNCHANGED,
    Status.CRITICAL: Outcome.FAILURE,
    Status.UNKNOWN: Outcome.FAILURE,
}


@dataclass(frozen=True)
class NagiosProperties:
    probe: CommandProbe | None  # a plugin, or
    builtin: str | None = None  # one of Choria's built-in checks
    annotations: tuple[tuple[str, str], ...] = ()
    gossfile: str = ""
    last_message: float = 0.0
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        builtin = fields.string("builtin")
        if builtin is not None and builtin.startswith("goss"):
            builtin = "goss"  # Choria matches any builtin starting with "goss"
        if builtin is not None and builtin not in BUILTINS:
            fields.error("builtin", f"must be one of {', '.join(BUILTINS)}, got {builtin!r}")
        if builtin is not None and fields.has("plugin"):
            fields.error("plugin", "set either plugin or builtin, not both")
        command = fields.command_line("plugin") if builtin is None else None
        fields.raw("plugin")
        timeout = fields.duration("timeout", minimum=0.001, minimum_text="1ms") or DEFAULT_TIMEOUT
        # Puppet's scout checks write `gossfile: ''` into every builtin check: only goss needs one
        gossfile = fields.string("gossfile", non_empty=False) or None
        if builtin == "goss" and gossfile is None:
            fields.problems.add(fields.pos, "the goss builtin needs 'gossfile'")
        last_message = fields.duration("last_message", minimum=0.001, minimum_text="1ms")
        if builtin == "choria_status" and last_message is None:
            fields.problems.add(fields.pos, "the choria_status builtin needs 'last_message'")
        for key in ("pubcert_expire", "token_expire"):
            if fields.duration(key, minimum=0) is not None:
                fields.error(
                    key,
                    "accepted and ignored: steward has no Choria certificate or token to check",
                    Severity.WARNING,
                )
        annotations = list(fields.string_map("annotations").items())
        probe = None
        if builtin is None:
            plugin, argv = command or ("", ("",))
            probe = CommandProbe(plugin, argv, timeout)
        props = cls(
            probe,
            builtin,
            tuple(annotations),
            gossfile=gossfile or "",
            last_message=last_message or 0.0,
            timeout=timeout,
        )
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
        report = await self._observe()
        payload = self.results.payload(report, self.clock.time(), self.clock.monotonic() - started)
        props = self.props
        payload["plugin"] = props.probe.command if props.probe is not None else props.builtin
        payload["annotations"] = dict(self.props.annotations)
        return WatcherResult(
            OUTCOMES[report.status],
            f"{report.status.value}: {report.output}",
            payload=payload,
            transition=report.status.value,
        )

    async def _observe(self) -> ProbeReport:
        props = self.props
        if props.probe is not None:
            return await observe(props.probe, self)
        if props.builtin == "heartbeat":
            return await builtins.heartbeat(self.context)
        if props.builtin == "goss":
            env = command_environment(self.machine, self.name)
            return await builtins.goss(
                self.context.processes, self.machine, env, props.gossfile, props.timeout
            )
        return await builtins.choria_status(self.context, props.last_message, props.timeout)
