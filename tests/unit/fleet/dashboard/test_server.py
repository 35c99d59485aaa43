"""The dashboard's HTTP side against a real nats-server, with bucket entries written by the
test in the documented format (steward/fleet/state.py): the page, the JSON, the SSE stream
(a snapshot, each change, a node falling silent), and that no route changes anything."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest

from steward import __version__
from steward.fleet.dashboard import DashboardServer, FleetBroadcast
from steward.fleet.feed import FleetFeed
from steward.fleet.state import graph_key, machine_key, node_key
from tests.support.daemon import until
from tests.support.nats_server import NatsServer, running_nats

BUCKET = "STEWARD_FLEET"
# the dashboard's clock runs this far ahead: a node heartbeating every 1 s (offline after
# 2 x 1 + 20 s of silence) then turns offline 0.5 s after its last heartbeat
AHEAD = 21.5
WAIT = 10.0


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Any]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
async def kv(nc: Any) -> Any:
    return await nc.jetstream().create_key_value(bucket=BUCKET)


def node(name: str, interval: float = 30.0) -> dict[str, Any]:
    return {
        "kind": "node",
        "node": name,
        "steward_version": "0.test",
        "started": time.time() - 60,
        "heartbeat": time.time(),
        "interval": interval,
        "machines": 1,
        "states": {"RUN": 1},
    }


def machine(node_name: str, name: str, state: str, seq: int) -> dict[str, Any]:
    cause = {
        "kind": "watcher",
        "text": "watcher check",
        "watcher": "check",
        "watcher_type": "exec",
        "outcome": "failure",
        "detail": "exit 2",
        "result": {"exit_code": 2},
    }
    last = {
        "seq": seq,
        "at": time.time(),
        "transition": "fail",
        "from_state": "RUN",
        "to_state": state,
        "version": "1.0.0",
        "cause": cause,
    }
    return {
        "kind": "machine",
        "node": node_name,
        "machine": name,
        "version": "1.0.0",
        "state": state,
        "since": time.time(),
        "seq": seq,
        "instance": "i-1",
        "last": last,
        "recent": [{**last, "cause": "watcher check"}],
        "watchers": {"check": {"type": "exec", "outcome": "failure", "detail": "", "at": 1.0}},
        "updated": time.time(),
    }


GRAPH = {
    "kind": "graph",
    "node": "web1.example.com",
    "machine": "web",
    "version": "1.0.0",
    "initial_state": "RUN",
    "states": ["RUN", "DOWN"],
    "transitions": [{"name": "fail", "from": ["RUN"], "to": "DOWN"}],
}


async def put(kv: Any, key: str, doc: dict[str, Any]) -> None:
    await kv.put(key, json.dumps(doc).encode())


@pytest.fixture
async def dashboard(kv: Any, nc: Any) -> AsyncIterator[DashboardServer]:
    await put(kv, node_key("web1.example.com"), node("web1.example.com", interval=1.0))
    await put(
        kv, machine_key("web1.example.com", "web"), machine("web1.example.com", "web", "RUN", 1)
    )
    await put(kv, graph_key("web1.example.com", "web"), GRAPH)
    server = DashboardServer(
        FleetBroadcast(FleetFeed(kv, nc.jetstream()), clock=lambda: time.time() + AHEAD),
        "127.0.0.1",
        0,
    )
    await server.start()
    yield server
    await server.stop()


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json()


async def test_fleet_json_has_nodes_machines_and_online(dashboard: DashboardServer) -> None:
    status, doc = await get_json(dashboard.url + "api/fleet")
    assert status == 200
    assert [(n["node"], n["online"]) for n in doc["nodes"]] == [("web1.example.com", True)]
    assert doc["nodes"][0]["last_seen"] == pytest.approx(time.time(), abs=5)
    (web,) = doc["machines"]
    assert (web["node"], web["machine"], web["state"], web["seq"]) == (
        "web1.example.com",
        "web",
        "RUN",
        1,
    )
    assert web["last"]["cause"]["result"] == {"exit_code": 2}
    assert doc["now"] == pytest.approx(time.time() + AHEAD, abs=5)


async def test_graph_of_a_machine_and_404_for_none(dashboard: DashboardServer) -> None:
    status, doc = await get_json(dashboard.url + "api/graph/web1.example.com/web")
    assert status == 200
    assert doc["states"] == ["RUN", "DOWN"]
    status, doc = await get_json(dashboard.url + "api/graph/web1.example.com/nope")
    assert status == 404
    assert "nope" in doc["error"]


async def test_the_page_and_its_files_are_served(dashboard: DashboardServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(dashboard.url) as resp:
            page = await resp.text()
            assert resp.content_type == "text/html"
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert "Read-only" in page
        assert f"steward {__version__}" in page
        for path, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
            async with session.get(dashboard.url + path) as resp:
                assert resp.status == 200
                assert resp.content_type == kind
                assert len(await resp.read()) > 1000


@pytest.mark.parametrize("path", ["", "api/fleet", "api/events", "api/graph/web1.example.com/web"])
async def test_no_route_changes_anything(dashboard: DashboardServer, path: str) -> None:
    async with aiohttp.ClientSession() as session:
        for method in ("POST", "PUT", "DELETE"):
            async with session.request(method, dashboard.url + path, json={}) as resp:
                assert resp.status == 405, (method, path)


class Stream:
    """The dashboard's SSE stream, read event by event."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self) -> tuple[str, dict[str, Any]]:
        event, data = "", ""
        async with asyncio.timeout(WAIT):
            while True:
                line = (await self.resp.content.readline()).decode()
                if line == "":
                    raise AssertionError("the stream ended")
                line = line.rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and event:
                    return event, json.loads(data)

    async def until(self, event: str, check: Any = None) -> dict[str, Any]:
        """Skip events until one named ``event`` (for which ``check(data)`` holds)."""
        while True:
            name, data = await self.next()
            if name == event and (check is None or check(data)):
                return data


@pytest.fixture
async def stream(dashboard: DashboardServer) -> AsyncIterator[Stream]:
    async with aiohttp.ClientSession() as session, session.get(dashboard.url + "api/events") as r:
        assert r.content_type == "text/event-stream"
        yield Stream(r)


async def test_stream_starts_with_the_snapshot(stream: Stream) -> None:
    name, data = await stream.next()
    assert name == "snapshot"
    assert [m["state"] for m in data["machines"]] == ["RUN"]


async def test_stream_sends_each_change(stream: Stream, kv: Any) -> None:
    await stream.until("snapshot")
    key = machine_key("web1.example.com", "web")
    await put(kv, key, machine("web1.example.com", "web", "DOWN", 2))
    changed = await stream.until("machine")
    assert (changed["machine"], changed["state"], changed["seq"]) == ("web", "DOWN", 2)
    assert changed["recent"][0]["transition"] == "fail"

    await put(kv, machine_key("db1", "db"), machine("db1", "db", "RUN", 7))
    assert (await stream.until("machine"))["node"] == "db1"
    first_sign = await stream.until("node")  # a node seen only through its machine
    assert (first_sign["node"], first_sign["online"], first_sign["last_seen"]) == (
        "db1",
        False,
        None,
    )

    await kv.delete(key)
    removed = await stream.until("machine-removed")
    assert (removed["node"], removed["machine"]) == ("web1.example.com", "web")


async def test_a_silent_node_turns_offline_without_any_entry(stream: Stream, kv: Any) -> None:
    await stream.until("snapshot")
    started = time.monotonic()
    offline = await stream.until("node", lambda d: d["node"] == "web1.example.com")
    assert offline["online"] is False
    assert time.monotonic() - started < 2.0  # woken at the deadline, not by a slow poll
    await put(kv, node_key("web1.example.com"), node("web1.example.com", interval=1.0))
    back = await stream.until("node", lambda d: d["node"] == "web1.example.com")
    assert back["online"] is True
    # a clean stop says so: offline at once, with when
    said = time.time()
    await put(kv, node_key("web1.example.com"), {**node("web1.example.com"), "stopped": said})
    stopped = await stream.until("node", lambda d: d["node"] == "web1.example.com")
    assert (stopped["online"], stopped["stopped"]) == (False, said)


async def test_a_listener_that_falls_behind_is_dropped(kv: Any, nc: Any) -> None:
    broadcast = FleetBroadcast(FleetFeed(kv, nc.jetstream()), backlog=2)
    await broadcast.start()
    try:
        _, listener = broadcast.listen()
        for seq in range(1, 5):
            await put(kv, machine_key("n", "m"), machine("n", "m", "RUN", seq))
        await until("the listener to be dropped", lambda: listener.dropped, WAIT)
        assert await listener.next() is None
    finally:
        await broadcast.stop()
