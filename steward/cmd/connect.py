"""The CLI's own NATS connection (``steward events --nats``, ``steward governor``): one URL,
failing at the first failed attempt instead of retrying for ever."""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client
from nats.errors import Error as NatsError

from steward.errors import ApiError

CONNECT_TIMEOUT = 3  # seconds for one connection attempt


async def connect_nats(url: str, credentials: str | None, *, name: str) -> Client:
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
            name=name,
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
