"""The one CloudEvent builder: every event steward emits is made here.

Two formats: ``steward`` (types ``io.steward.machine.…``, source ``steward://<node>``, subjects
``<prefix>.<node>.<machine>.…``) and ``choria`` (Choria's types, source and subjects, so
Choria's tools can read them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from steward.events.envelope import Envelope, EventKind, LifecycleStep, subject_token

_JSON = JSONFormat()


class EventFormat(StrEnum):
    STEWARD = "steward"
    CHORIA = "choria"


def _iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class EventBuilder:
    def __init__(
        self, node: str, fmt: EventFormat = EventFormat.STEWARD, prefix: str = "steward.events"
    ) -> None:
        self.node = node
        self.format = fmt
        self.prefix = prefix

    # the three kinds -------------------------------------------------------------------------
    def transition(
        self,
        *,
        machine: str,
        version: str,
        instance: str,
        transition: str,
        from_state: str,
        to_state: str,
        seq: int,
        at: float,
        cause: str,
    ) -> Envelope:
        if self.format is EventFormat.CHORIA:
            ctype, subject = "io.choria.machine.v1.transition", "choria.machine.transition"
            data: dict[str, Any] = {
                "protocol": ctype,
                "identity": self.node,
                "id": instance,
                "version": version,
                "timestamp": int(at),
                "machine": machine,
                "transition": transition,
                "from_state": from_state,
                "to_state": to_state,
                "info": cause,
                "seq": seq,
            }
        else:
            ctype = "io.steward.machine.v1.transition"
            subject = self._subject(machine, "transition")
            data = {
                **self._common(machine, version, instance, at),
                "transition": transition,
                "from_state": from_state,
                "to_state": to_state,
                "seq": seq,
                "cause": cause,
            }
        return self._envelope(EventKind.TRANSITION, machine, ctype, subject, at, data)

    def watcher(
        self,
        *,
        machine: str,
        version: str,
        instance: str,
        watcher: str,
        watcher_type: str,
        state: str,
        outcome: str,
        detail: str,
        payload: Mapping[str, Any],
        at: float,
    ) -> Envelope:
        if self.format is EventFormat.CHORIA:
            ctype = f"io.choria.machine.watcher.{watcher_type}.v1.state"
            subject = f"choria.machine.watcher.{subject_token(watcher_type)}.state"
            data: dict[str, Any] = {
                "protocol": ctype,
                "identity": self.node,
                "id": instance,
                "version": version,
                "timestamp": int(at),
                "type": watcher_type,
                "machine": machine,
                "name": watcher,
                **payload,
            }
        else:
            ctype = f"io.steward.machine.watcher.{watcher_type}.v1.state"
            subject = self._subject(machine, "watcher", watcher)
            data = {
                **self._common(machine, version, instance, at),
                "watcher": watcher,
                "watcher_type": watcher_type,
                "machine_state": state,
                "outcome": outcome,
                "detail": detail,
                "state": dict(payload),
            }
        return self._envelope(EventKind.WATCHER, machine, ctype, subject, at, data)

    def lifecycle(
        self,
        *,
        machine: str,
        version: str | None,
        instance: str | None,
        step: LifecycleStep,
        at: float,
        state: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Envelope:
        if self.format is EventFormat.CHORIA:
            ctype, subject = "io.choria.machine.v1.lifecycle", "choria.machine.lifecycle"
        else:
            ctype, subject = "io.steward.machine.v1.lifecycle", self._subject(machine, "lifecycle")
        data = {
            **self._common(machine, version, instance, at),
            "step": step.value,
            "state": state,
            **(detail or {}),
        }
        return self._envelope(EventKind.LIFECYCLE, machine, ctype, subject, at, data)

    def stream_subjects(self) -> str:
        """The subject wildcard a JetStream stream needs to hold every event we publish."""
        return "choria.machine.>" if self.format is EventFormat.CHORIA else f"{self.prefix}.>"

    # ----------------------------------------------------------------------------------------
    def _common(
        self, machine: str, version: str | None, instance: str | None, at: float
    ) -> dict[str, Any]:
        return {
            "node": self.node,
            "machine": machine,
            "machine_version": version,
            "instance": instance,
            "timestamp": _iso(at).isoformat().replace("+00:00", "Z"),
        }

    def _subject(self, machine: str, *tail: str) -> str:
        tokens = [self.prefix, subject_token(self.node), subject_token(machine)]
        tokens += [subject_token(t) for t in tail]
        return ".".join(tokens)

    def _envelope(
        self,
        kind: EventKind,
        machine: str,
        ctype: str,
        subject: str,
        at: float,
        data: dict[str, Any],
    ) -> Envelope:
        event_id = str(uuid.uuid4())
        if self.format is EventFormat.CHORIA:
            source, ce_subject = "io.choria.machine", self.node
        else:
            source, ce_subject = f"steward://{self.node}", machine
        event = CloudEvent(
            {
                "id": event_id,
                "source": source,
                "type": ctype,
                "subject": ce_subject,
                "time": _iso(at),
                "datacontenttype": "application/json",
            },
            data,
        )
        return Envelope(event_id, kind, machine, subject, _JSON.write(event))


def parse_event(body: bytes) -> CloudEvent:
    """Read a structured JSON CloudEvent (as stored or received)."""
    event = _JSON.read(None, body)
    assert isinstance(event, CloudEvent)
    return event
