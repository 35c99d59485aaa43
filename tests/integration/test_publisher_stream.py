"""The publisher and its JetStream stream over a real nats-server, in process: a stream
deleted under a running node (a broker that lost its store) is created again by the next
publish's failure, and the event lands in it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import nats
import pytest

from steward.broker.connection import NatsConnection
from steward.broker.settings import NatsSettings
from steward.events.envelope import LifecycleStep
from steward.events.formats import StewardFormat
from steward.events.pipeline import EventPipeline, event_pipeline
from steward.machine.persistence import SqliteStore
from tests.support.nats_server import NatsServer

STREAM = "STEWARD_EVENTS"
DEADLINE = 20.0
FORMAT = StewardFormat("n1")


class Node:
    """One node's outbox, connection and event pipeline, as the daemon wires them."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        settings = NatsSettings(
            servers=(url,), stream=STREAM, reconnect_wait=0.1, reconnect_jitter=0.0
        )
        self.store = SqliteStore(tmp_path / "steward.db")
        self.nats = NatsConnection(settings, name="publisher-test")
        self.pipeline: EventPipeline = event_pipeline(
            FORMAT, self.store, self.nats, stream=STREAM, limits=settings.limits
        )

    async def emit(self) -> None:
        event = FORMAT.lifecycle(
            machine="m", version="1", instance="i", step=LifecycleStep.STARTED, at=time.time()
        )
        await self.pipeline.emitter.emit([event])

    @property
    def published(self) -> int:
        return self.pipeline.publisher.published


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    s = NatsServer(tmp_path / "jetstream", tmp_path / "nats.log")
    await asyncio.to_thread(s.start)
    try:
        yield s
    finally:
        await asyncio.to_thread(s.close)


@pytest.fixture
async def node(tmp_path: Path, server: NatsServer) -> AsyncIterator[Node]:
    n = Node(tmp_path, server.url)
    await n.store.open()
    n.nats.start()
    n.pipeline.publisher.start()
    try:
        yield n
    finally:
        await n.pipeline.publisher.stop(0)
        await n.nats.stop()
        await n.store.close()


async def test_a_stream_deleted_under_the_node_is_created_again(
    server: NatsServer, node: Node
) -> None:
    await node.emit()
    await until(lambda: node.published == 1, "the first event published")
    assert node.nats.state.since is not None  # when this connection came up (status)
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await js.delete_stream(STREAM)
        await node.emit()
        await until(lambda: node.published == 2, "the event published into a new stream")
        info = await js.stream_info(STREAM)
        assert info.state.messages == 1
    finally:
        await nc.close()
