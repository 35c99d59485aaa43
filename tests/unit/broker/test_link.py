"""What users of the daemon's NATS connection see, without a server."""

from __future__ import annotations

import asyncio

import pytest

from steward.broker.connection import NatsConnection
from steward.broker.link import NoNats
from steward.broker.settings import NatsSettings
from steward.errors import NatsUnavailable


async def test_no_nats_fails_at_once_and_says_how_to_configure_it() -> None:
    none = NoNats()
    assert not none.configured and not none.connected
    with pytest.raises(NatsUnavailable, match=r"nats\.servers"):
        await none.client()
    with pytest.raises(NatsUnavailable):
        await none.jetstream()
    none.report("ignored")
    assert none.state.errors == 0 and none.status() is None


async def test_a_connection_not_started_or_stopped_is_unavailable() -> None:
    conn = NatsConnection(NatsSettings(servers=("nats://127.0.0.1:1",)))
    with pytest.raises(NatsUnavailable, match="not open"):
        await conn.client()
    conn.start()  # nothing listens on port 1: it keeps retrying in the background
    waiting = asyncio.ensure_future(conn.client())
    await asyncio.sleep(0.1)
    assert not waiting.done()  # users wait while the connection is down
    await conn.stop()
    with pytest.raises(NatsUnavailable, match="closed"):
        await asyncio.wait_for(waiting, 5)  # and hear it when the daemon closes it
    assert conn.state.errors >= 1
    assert conn.state.failed_connects >= 1  # counted apart from other errors (status)
    assert conn.status()["failed_connects"] == conn.state.failed_connects
    assert conn.state.since is None  # never connected
    assert "127.0.0.1" in (conn.state.last_error or "")  # the refused connect, reported


def test_report_counts_every_failure_and_keeps_the_last() -> None:
    conn = NatsConnection(NatsSettings(servers=("nats://a:4222", "nats://b:4222")))
    conn.report("publish failed: timeout")
    conn.report("publish failed: timeout")
    conn.report("JetStream stream S: gone")
    status = conn.status()
    assert status["errors"] == 3
    assert status["last_error"] == "JetStream stream S: gone"
    assert status["servers"] == ["nats://a:4222", "nats://b:4222"]
    assert status["connected"] is False
