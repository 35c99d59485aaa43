"""How events look: one object per format, each building every event steward emits.

``StewardFormat``: types ``io.steward.machine.…``, source ``steward://<node>``, subjects
``<prefix>.<node>.<machine>.…``. ``ChoriaFormat``: Choria's types, source and subjects, so
Choria's tools can read them. Both make an ``Envelope`` (id, subject, CloudEvent bytes): the
structured JSON CloudEvent as the ``cloudevents`` SDK writes it (``write_event``);
``event_format`` picks one by its configured name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from steward.events.envelope import Envelope, EventKind, LifecycleStep, subject_token
from steward.ids import uuid4_str

if TYPE_CHECKING:
    from cloudevents.core.v1.event import CloudEvent

FORMATS = ("steward", "choria")
SPECVERSION = "1.0"
DEFAULT_PREFIX = "steward.events"


class EventFormat(Protocol):
    """Builds the three kinds of events for one node."""

    name: str
    # whether each node x machine x kind has subjects of its own (a per-subject limit of the
    # stream is then a per-machine limit; Choria's subjects are shared by the whole fleet)
    per_machine_subjects: bool
    node: str

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
    ) -> Envelope: ...

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
    ) -> Envelope: ...

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
    ) -> Envelope: ...

    def stream_subjects(self) -> list[str]:
        """The subject wildcards a JetStream stream needs to hold every event of this format."""
        ...


def event_format(name: str, node: str, prefix: str = DEFAULT_PREFIX) -> EventFormat:
    """The format called ``name`` (one of ``FORMATS``)."""
    if name == "choria":
        return ChoriaFormat(node)
    if name == "steward":
        return StewardFormat(node, prefix)
    raise ValueError(f"unknown event format {name!r} (formats: {', '.join(FORMATS)})")


class StewardFormat:
    name = "steward"
    per_machine_subjects = True

    def __init__(self, node: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.node = node
        self.prefix = prefix
        self.source = f"steward://{node}"

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
        data = {
            **common_data(self.node, machine, version, instance, at),
            "transition": transition,
            "from_state": from_state,
            "to_state": to_state,
            "seq": seq,
            "cause": cause,
        }
        return self._envelope(
            EventKind.TRANSITION, machine, "io.steward.machine.v1.transition", at, data
        )

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
        data = {
            **common_data(self.node, machine, version, instance, at),
            "watcher": watcher,
            "watcher_type": watcher_type,
            "machine_state": state,
            "outcome": outcome,
            "detail": detail,
            "state": dict(payload),
        }
        ctype = f"io.steward.machine.watcher.{watcher_type}.v1.state"
        return self._envelope(EventKind.WATCHER, machine, ctype, at, data, watcher)

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
        data = lifecycle_data(self.node, machine, version, instance, step, at, state, detail)
        return self._envelope(
            EventKind.LIFECYCLE, machine, "io.steward.machine.v1.lifecycle", at, data
        )

    def stream_subjects(self) -> list[str]:
        return [f"{self.prefix}.>"]

    def _envelope(
        self,
        kind: EventKind,
        machine: str,
        ctype: str,
        at: float,
        data: dict[str, Any],
        *tail: str,
    ) -> Envelope:
        """``<prefix>.<node>.<machine>.<kind>[.<tail>…]``, CloudEvent subject = the machine."""
        tokens = [self.prefix, subject_token(self.node), subject_token(machine), kind.value]
        tokens += [subject_token(t) for t in tail]
        return make_envelope(kind, machine, ".".join(tokens), self.source, ctype, machine, at, data)


class ChoriaFormat:
    """Choria's ``io.choria.machine.*`` events: the shape Choria's own tools consume."""

    name = "choria"
    per_machine_subjects = False
    source = "io.choria.machine"

    def __init__(self, node: str) -> None:
        self.node = node

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
        ctype = "io.choria.machine.v1.transition"
        data = {
            **self._header(ctype, instance, version, at),
            "machine": machine,
            "transition": transition,
            "from_state": from_state,
            "to_state": to_state,
            "info": cause,
            "seq": seq,
        }
        return self._envelope(
            EventKind.TRANSITION, machine, ctype, "choria.machine.transition", at, data
        )

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
        ctype = f"io.choria.machine.watcher.{watcher_type}.v1.state"
        data = {
            **self._header(ctype, instance, version, at),
            "type": watcher_type,
            "machine": machine,
            "name": watcher,
            **payload,
        }
        subject = f"choria.machine.watcher.{subject_token(watcher_type)}.state"
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
        # Choria has no machine lifecycle event: steward's data under Choria's naming
        data = lifecycle_data(self.node, machine, version, instance, step, at, state, detail)
        ctype = "io.choria.machine.v1.lifecycle"
        return self._envelope(
            EventKind.LIFECYCLE, machine, ctype, "choria.machine.lifecycle", at, data
        )

    def stream_subjects(self) -> list[str]:
        return ["choria.machine.>"]

    def _header(self, ctype: str, instance: str, version: str, at: float) -> dict[str, Any]:
        return {
            "protocol": ctype,
            "identity": self.node,
            "id": instance,
            "version": version,
            "timestamp": int(at),
        }

    def _envelope(
        self,
        kind: EventKind,
        machine: str,
        ctype: str,
        subject: str,
        at: float,
        data: dict[str, Any],
    ) -> Envelope:
        # Choria's CloudEvent subject is the node's identity
        return make_envelope(kind, machine, subject, self.source, ctype, self.node, at, data)


# shared by the formats ----------------------------------------------------------------------


def _iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def common_data(
    node: str, machine: str, version: str | None, instance: str | None, at: float
) -> dict[str, Any]:
    return {
        "node": node,
        "machine": machine,
        "machine_version": version,
        "instance": instance,
        "timestamp": _iso(at).isoformat().replace("+00:00", "Z"),
    }


def lifecycle_data(
    node: str,
    machine: str,
    version: str | None,
    instance: str | None,
    step: LifecycleStep,
    at: float,
    state: str | None,
    detail: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        **common_data(node, machine, version, instance, at),
        "step": step.value,
        "state": state,
        **(detail or {}),
    }


def make_envelope(
    kind: EventKind,
    machine: str,
    subject: str,
    source: str,
    ctype: str,
    ce_subject: str,
    at: float,
    data: dict[str, Any],
) -> Envelope:
    """The structured JSON CloudEvent, with a fresh id, ready to store and send."""
    event_id = uuid4_str()
    attributes = {
        "id": event_id,
        "source": source,
        "type": ctype,
        "subject": ce_subject,
        "time": _iso(at),
        "datacontenttype": "application/json",
        "specversion": SPECVERSION,  # the SDK's CloudEvent adds it last
    }
    return Envelope(event_id, kind, machine, subject, write_event(attributes, data))


def write_event(attributes: Mapping[str, Any], data: Mapping[str, Any] | None) -> bytes:
    """The structured JSON CloudEvent: what the SDK's ``JSONFormat.write`` writes for its
    ``CloudEvent(attributes, data)`` with a JSON ``datacontenttype`` (the unit tests compare
    the two byte for byte, and read every kind of event back with the SDK).

    Written here because the SDK's JSON format module imports dateutil's parser for reading
    (with dateutil.tz, zoneinfo, ctypes) and its CloudEvent class validates what steward
    builds valid (~1.5 MiB of the daemon's RSS together): the daemon only writes events;
    ``parse_event`` imports the SDK."""
    body: dict[str, Any] = dict(attributes)
    if data is not None:
        body["data"] = data
    return json.dumps(body, default=_json_datetime).encode("utf-8")


def _json_datetime(value: object) -> str:
    """A datetime as the SDK writes it: ISO 8601, UTC as ``Z``."""
    if not isinstance(value, datetime):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    text = value.isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def parse_event(body: bytes) -> CloudEvent:
    """Read a structured JSON CloudEvent (as stored or received)."""
    from cloudevents.core.formats.json import JSONFormat  # dateutil: see write_event
    from cloudevents.core.v1.event import CloudEvent

    event = JSONFormat().read(None, body)
    assert isinstance(event, CloudEvent)
    return event
