"""``steward events``: the local daemon's events (SSE on its socket) or a fleet's (NATS)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from nats.aio.client import Client
from nats.errors import Error as NatsError

from steward.errors import ApiError
from steward.events.envelope import EventKind, subject_token

CONNECT_TIMEOUT = 3  # seconds for one connection attempt


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
    nc = await _connect(url, credentials)
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


async def _connect(url: str, credentials: str | None) -> Client:
    """Connect, or fail at the first failed attempt with ApiError.

    Once connected, nats-py reconnects for ever. Before that, nats-py 2.x with
    ``max_reconnect_attempts=-1`` would also retry the *first* connect for ever (its server
    pool never runs dry), so a wrong URL would hang silently: the first error ends it here.
    """
    errors: list[str] = []
    failed = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc) or type(exc).__name__)
        failed.set()

    nc = Client()
    connecting = asyncio.ensure_future(
        nc.connect(
            url,
            connect_timeout=CONNECT_TIMEOUT,
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            error_cb=on_error,
            user_credentials=credentials,
            name="steward events",
        )
    )
    first_error = asyncio.ensure_future(failed.wait())
    await asyncio.wait({connecting, first_error}, return_when=asyncio.FIRST_COMPLETED)
    first_error.cancel()
    if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
        return nc
    connecting.cancel()
    results = await asyncio.gather(connecting, return_exceptions=True)
    with contextlib.suppress(NatsError, OSError, TimeoutError):
        await nc.close()
    exc = results[0] if isinstance(results[0], Exception) else None
    if errors:
        detail = errors[-1]
    elif exc is not None:
        detail = str(exc) or type(exc).__name__
    else:
        detail = "no connection"
    raise ApiError(f"cannot connect to NATS at {url}: {detail}") from exc
