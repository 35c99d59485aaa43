"""The one place that decides where a daemon's events go.

With NATS configured, every event is stored in the outbox (``OutboxSink``) and a
``NatsPublisher`` drains it over the daemon's connection. Without, events are only delivered
locally (``LocalOnly``) and ``NoPublisher`` stands in: nothing else in steward asks whether
NATS is configured.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from steward.broker.link import NatsLink
from steward.broker.settings import StreamLimits
from steward.clock import Clock
from steward.events.drain import DrainSettings
from steward.events.emitter import Emitter, LocalOnly, OutboxSink
from steward.events.formats import EventFormat
from steward.events.local import LocalEvents
from steward.events.outbox import Outbox
from steward.events.publisher import NatsPublisher, NoPublisher, Publisher


@dataclass(frozen=True)
class EventPipeline:
    emitter: Emitter  # what machines and the node emit through
    publisher: Publisher  # what the daemon starts and stops


def event_pipeline(
    fmt: EventFormat,
    outbox: Outbox,
    nats: NatsLink,
    *,
    stream: str | None = None,
    replicas: int = 1,
    limits: StreamLimits | None = None,
    drain: DrainSettings | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> EventPipeline:
    local = LocalEvents()
    if not nats.configured:
        return EventPipeline(Emitter(fmt, LocalOnly(), local), NoPublisher())
    sink = OutboxSink(outbox)
    limits = limits or StreamLimits()
    if not fmt.per_machine_subjects:
        # one subject holds every node's transitions: a per-subject limit would cap the fleet
        limits = replace(limits, max_msgs_per_subject=-1)
    publisher = NatsPublisher(
        nats,
        outbox,
        sink.changed,
        stream=stream,
        stream_subjects=fmt.stream_subjects(),
        replicas=replicas,
        limits=limits,
        drain=drain,
        clock=clock,
        rng=rng,
    )
    return EventPipeline(Emitter(fmt, sink, local), publisher)
