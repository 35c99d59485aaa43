"""gossip: publish a message, or a Choria service registration, every ``interval`` while the
machine is in a matching state, on the daemon's NATS connection.

``subject`` and ``payload`` may hold Choria templates, rendered at each publish. With
``registration`` instead, the payload is Choria's registration JSON and the subject
``$KV.CHORIA_SERVICES.<cluster>.<protocol>.<service>.<machine instance>`` (or ``<prefix>.…``):
the key of Choria's service-registry bucket, one per running machine instance.

``ttl_seconds`` adds the ``Nats-TTL`` header. nats-server (2.11+) honours it only where a
JetStream stream stores the message and the stream allows per-message TTLs (KV buckets made
with a limit-marker TTL, streams with ``allow_msg_ttl``); it then removes the message after that
long. A stream without ``allow_msg_ttl`` rejects such a message, and core-NATS subscribers see
the header but nothing expires. (Choria sends ``Nats-TTLSeconds``, which no server reads.)

Each publish is followed by a flush, so a message the server did not take is an error. A
publish that fails, NATS being down, or no NATS configured, is an error result (it fires
``fail_transition``) with the reason; the next interval tries again, so the watcher recovers
by itself when NATS is back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from steward.errors import NatsUnavailable
from steward.machine.source import Fields
from steward.templates import Template
from steward.watchers.base import Outcome, Watcher, WatcherResult

TYPE = "gossip"
REGISTRY_BUCKET = "CHORIA_SERVICES"
TTL_HEADER = "Nats-TTL"
FLUSH_TIMEOUT = 5.0  # seconds for the server to take a message
_SERVICE_NAME = re.compile(r"^[a-zA-Z][a-zA-Z\d_-]*$")


@dataclass(frozen=True)
class Registration:
    """A Choria service registration; ``payload()`` is Choria's JSON, field for field."""

    cluster: str
    service: str
    protocol: str
    ip: str
    port: int
    priority: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""

    def subject(self, instance: str) -> str:
        key = f"{self.cluster}.{self.protocol}.{self.service}.{instance}"
        return f"{self.prefix or '$KV.' + REGISTRY_BUCKET}.{key}"

    def payload(self) -> str:
        doc: dict[str, Any] = {
            "cluster": self.cluster,
            "service": self.service,
            "protocol": self.protocol,
            "address": self.ip,
            "port": self.port,
            "priority": self.priority,
        }
        if self.annotations:
            doc["annotations"] = dict(sorted(self.annotations.items()))
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def parse(cls, fields: Fields) -> Registration | None:
        names = {key: fields.string(key, required=True) for key in ("cluster", "service")}
        names["protocol"] = fields.string("protocol", required=True)
        for key, value in names.items():
            if value is not None and not _SERVICE_NAME.match(value):
                fields.error(key, f"invalid {key} {value!r}: letters, digits, _ and -")
        ip = fields.string("ip", required=True)
        if ip is not None:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                fields.error("ip", f"invalid ip {ip!r}")
        port = fields.integer("port", 0, minimum=1, maximum=65535)
        if not fields.has("port"):
            fields.problems.add(fields.pos, f"missing required field {fields.child_path('port')!r}")
        priority = fields.integer("priority", 0, minimum=0)
        annotations = fields.string_map("annotations")
        prefix = fields.string("prefix")
        if prefix is not None and subject_problem(prefix):
            fields.error("prefix", f"invalid subject prefix: {subject_problem(prefix)}")
        fields.finish(" in registration")
        cluster, service, protocol = names["cluster"], names["service"], names["protocol"]
        if None in (cluster, service, protocol, ip) or not port:
            return None
        assert cluster and service and protocol and ip
        return cls(cluster, service, protocol, ip, port, priority, annotations, prefix or "")


@dataclass(frozen=True)
class GossipProperties:
    subject: Template | None = None
    payload: Template | None = None
    registration: Registration | None = None
    ttl_seconds: int = 0

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        registration = None
        section = fields.mapping("registration")
        if section is not None:
            registration = Registration.parse(section)
            for key in ("subject", "payload"):
                if fields.has(key):
                    fields.error(key, "cannot be set with registration")
            fields.raw("subject")
            fields.raw("payload")
            subject = payload = None
        else:
            subject = fields.template("subject", required=True)
            payload = fields.template("payload", required=True)
            if subject is not None and subject.static and subject_problem(subject.source):
                fields.error("subject", f"invalid subject: {subject_problem(subject.source)}")
        props = cls(
            subject=subject,
            payload=payload,
            registration=registration,
            ttl_seconds=fields.integer("ttl_seconds", 0, minimum=0),
        )
        fields.finish(" in gossip properties")
        return props


def subject_problem(subject: str) -> str | None:
    """Why ``subject`` cannot be published to, or None."""
    if not subject:
        return "empty"
    if any(c.isspace() for c in subject):
        return f"{subject!r} holds whitespace"
    tokens = subject.split(".")
    if "" in tokens:
        return f"{subject!r} has an empty token"
    if any(t in ("*", ">") for t in tokens):
        return f"{subject!r} holds a wildcard"
    return None


class GossipWatcher(Watcher):
    TYPE = TYPE
    Properties = GossipProperties
    default_interval = 15.0  # Choria's

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last: dict[str, Any] = {
            "previous_subject": "",
            "previous_payload": "",
            "previous_gossip": 0,
        }

    @property
    def props(self) -> GossipProperties:
        p = self.spec.properties
        assert isinstance(p, GossipProperties)
        return p

    async def check(self) -> WatcherResult:
        try:
            subject, payload = self._message()
        except ValueError as exc:
            return self._error(f"cannot build the message: {exc}")
        nats = self.context.nats
        if nats.configured and not nats.connected:
            return self._error("NATS is not connected")
        try:
            client = await nats.client()
        except NatsUnavailable as exc:
            return self._error(str(exc))
        headers = {TTL_HEADER: f"{self.props.ttl_seconds}s"} if self.props.ttl_seconds else None
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT):
                await client.publish(subject, payload.encode(), headers=headers)
                await client.flush()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # nats-py raises several unrelated types; all mean "not sent"
            reason = f"publish to {subject} failed: {type(exc).__name__}: {exc}".rstrip(": ")
            nats.report(reason)
            return self._error(reason)
        self._last = {
            "previous_subject": subject,
            "previous_payload": payload,
            "previous_gossip": int(self.clock.time()),
        }
        return WatcherResult(Outcome.SUCCESS, f"published to {subject}", payload=self._state())

    def _message(self) -> tuple[str, str]:
        props = self.props
        if props.registration is not None:
            reg = props.registration
            return reg.subject(self.context.processes.instance), reg.payload()
        assert props.subject is not None and props.payload is not None
        facts, data = self.context.node.facts.current, self.machine.data_snapshot()
        subject = props.subject.render(facts, data)
        problem = subject_problem(subject)
        if problem:
            raise ValueError(f"invalid subject: {problem}")
        return subject, props.payload.render(facts, data)

    def _error(self, reason: str) -> WatcherResult:
        return WatcherResult(Outcome.ERROR, reason, payload=self._state(reason))

    def _state(self, error: str | None = None) -> dict[str, Any]:
        return {**self._last, "ttl_seconds": self.props.ttl_seconds, "error": error}
