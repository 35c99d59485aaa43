"""``steward events``: the local daemon's events (SSE on its socket) or a fleet's (NATS)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from steward.cmd.connect import connect_nats
from steward.events.envelope import EventKind, subject_token


def fleet_subject(
    prefix: str, node: str | None, machine: str | None, kind: EventKind | None
) -> str:
    """The NATS subject that selects these events in steward's subject layout."""
    tail = {
        None: ">",
        EventKind.TRANSITION: "transition",
        EventKind.LIFECYCLE: "lifecycle",
        EventKind.WATCHER: "watcher.*",
    }[kind]
    node_token = subject_token(node) if node else "*"
    machine_token = subject_token(machine) if machine else "*"
    return f"{prefix}.{node_token}.{machine_token}.{tail}"


async def fleet_events(
    url: str,
    subject: str,
    on_event: Callable[[bytes], None],
    *,
    credentials: str | None = None,
    stop: asyncio.Event | None = None,
    on_subscribed: Callable[[], None] | None = None,
) -> None:
    """Subscribe to ``subject`` on NATS and call ``on_event`` for each message until stopped."""
    nc = await connect_nats(url, credentials, name="steward events")
    try:
        sub = await nc.subscribe(subject)
        if on_subscribed is not None:
            on_subscribed()
        async for msg in sub.messages:
            on_event(msg.data)
            if stop is not None and stop.is_set():
                break
    finally:
        await nc.close()
