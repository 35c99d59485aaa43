"""NatsPublisher's stream look-up: the probe that keeps a node from publishing into a stream
that cannot store yet (a cluster just back, a stream leader being elected)."""

from __future__ import annotations

import asyncio
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ClusterInfo, StreamConfig, StreamInfo, StreamState

from steward.broker.link import ConnectionState
from steward.events.publisher import LOOKUP_TIMEOUT, PUBLISH_TIMEOUT, NatsPublisher, has_leader
from tests.support.fakes import FakeClock

STREAM = "EVENTS"


def info(leader: str | None, *, cluster: bool = True) -> StreamInfo:
    state = StreamState(messages=0, bytes=0, first_seq=0, last_seq=0, consumer_count=0)
    return StreamInfo(
        config=StreamConfig(name=STREAM, subjects=["e.>"]),
        state=state,
        cluster=ClusterInfo(leader=leader, name="c") if cluster else None,
    )


class ScriptedJetStream:
    """Answers stream_info from a script: an exception to raise or a StreamInfo to return."""

    def __init__(self, client: ScriptedClient, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    async def stream_info(self, name: str) -> StreamInfo:
        self._client.timeouts.append(self._timeout)
        answer = self._client.script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class ScriptedClient:
    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.timeouts: list[float] = []

    def jetstream(self, timeout: float = 5.0) -> ScriptedJetStream:
        return ScriptedJetStream(self, timeout)


class Link:
    configured = True
    connected = True

    def __init__(self) -> None:
        self.state = ConnectionState()
        self.reported: list[str] = []

    def report(self, message: str) -> None:
        self.reported.append(message)

    def succeeded(self, at: float) -> None:
        pass


def publisher(clock: FakeClock, link: Link) -> NatsPublisher:
    return NatsPublisher(
        link,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # the look-up does not touch the outbox
        asyncio.Event(),
        stream=STREAM,
        stream_subjects=["e.>"],
        replicas=3,
        clock=clock,
    )


def test_a_stream_without_a_leader_cannot_store() -> None:
    assert has_leader(info("n2"))
    assert not has_leader(info(None))
    assert not has_leader(info(""))
    assert has_leader(info(None, cluster=False))  # one server, no cluster: it is the leader


async def test_timeouts_start_short_and_double_and_a_leaderless_stream_is_asked_again() -> None:
    clock = FakeClock()
    link = Link()
    client = ScriptedClient(
        [NatsTimeoutError(), NatsTimeoutError(), NatsTimeoutError(), info(None), info("n1")]
    )
    lookup = asyncio.create_task(publisher(clock, link)._ensure_stream(client))  # type: ignore[arg-type]
    await clock.advance(0.0)
    assert client.timeouts == [LOOKUP_TIMEOUT, 2 * LOOKUP_TIMEOUT, 4 * LOOKUP_TIMEOUT, 5.0]
    assert not lookup.done()  # leaderless: asked again after a backoff
    await clock.advance(0.5)
    await lookup
    assert client.timeouts[-1] == PUBLISH_TIMEOUT
    assert len(client.timeouts) == 5
    assert sum("no leader yet" in m for m in link.reported) == 1
    assert sum("(1s)" in m for m in link.reported) == 1
