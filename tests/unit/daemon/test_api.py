"""The control API's history route, on a real store, served on a real Unix socket and asked
through aiohttp's client (an HTTP client that is not ours)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from steward.daemon import api as api_module
from steward.daemon.api import ControlSocket
from steward.daemon.node import Node
from steward.events.envelope import Envelope, EventKind
from steward.events.local import LocalEvents
from steward.machine.persistence import SqliteStore
from tests.support.fakes import node_services
from tests.support.machines import machine_spec

DEADLINE = 5.0


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Node, aiohttp.ClientSession]]:
    store = SqliteStore(tmp_path / "steward.db")
    await store.open()
    node = Node(node_services(store=store))
    daemon: Any = SimpleNamespace(node=node, store=store)
    server = ControlSocket(daemon, tmp_path / "api.sock")
    await server.start()
    client = aiohttp.ClientSession(
        "http://steward", connector=aiohttp.UnixConnector(path=str(server.path))
    )
    try:
        yield node, client
    finally:
        await client.close()
        await server.stop()
        await node.stop()
        await store.close()


async def test_history_lists_the_last_transitions_oldest_first(api: Any) -> None:
    node, client = api
    machine = await node.add(machine_spec())
    for transition in ("up", "down", "up"):
        await machine.fire(transition)
    resp = await client.get("/v1/machines/m/history", params={"limit": "2"})
    assert resp.status == 200
    body = await resp.json()
    assert [(e["seq"], e["transition"], e["from_state"], e["to_state"]) for e in body] == [
        (2, "down", "b", "a"),
        (3, "up", "a", "b"),
    ]
    assert body[-1]["cause"] == {"kind": "manual", "text": "manual"}
    assert len(await (await client.get("/v1/machines/m/history")).json()) == 3


async def test_a_removed_machine_keeps_its_history(api: Any) -> None:
    node, client = api
    machine = await node.add(machine_spec())
    await machine.fire("up")
    await node.remove("m")
    resp = await client.get("/v1/machines/m/history")
    assert resp.status == 200
    assert [e["seq"] for e in await resp.json()] == [1]


async def test_an_unknown_machine_is_404_and_a_bad_limit_400(api: Any) -> None:
    node, client = api
    await node.add(machine_spec())
    resp = await client.get("/v1/machines/nope/history")
    assert (resp.status, await resp.json()) == (
        404,
        {"error": "no machine named 'nope' on this node"},
    )
    for limit in ("0", "-3", "many"):
        resp = await client.get("/v1/machines/m/history", params={"limit": limit})
        assert resp.status == 400, limit


def envelope(n: int) -> Envelope:
    body = json.dumps({"id": f"e{n}", "subject": "m"}).encode()
    return Envelope(f"e{n}", EventKind.TRANSITION, "m", "steward.events.n.m.transition", body)


async def test_follow_sends_the_backlog_then_live_events_and_ends_when_the_daemon_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "KEEPALIVE", 0.05)
    local = LocalEvents()
    local.deliver([envelope(1)])
    daemon: Any = SimpleNamespace(events=SimpleNamespace(local=local))
    server = ControlSocket(daemon, tmp_path / "api.sock")
    await server.start()
    connector = aiohttp.UnixConnector(path=str(server.path))
    async with aiohttp.ClientSession("http://steward", connector=connector) as client:
        resp = await client.get("/v1/events", params={"follow": "1"})
        assert (resp.status, resp.headers["Content-Type"], resp.headers["Cache-Control"]) == (
            200,
            "text/event-stream",
            "no-cache",
        )
        async with asyncio.timeout(DEADLINE):
            first = await resp.content.readuntil(b"\n\n")
            assert first == b'id: e1\nevent: transition\ndata: {"id": "e1", "subject": "m"}\n\n'
            assert await resp.content.readuntil(b": keepalive\n\n")
            local.deliver([envelope(2)])
            assert b"id: e2\n" in await resp.content.readuntil(b"id: e2\n")
            stopping = asyncio.ensure_future(server.stop())
            rest = await resp.content.read()  # a clean end of the chunked body, not a cut
            await stopping
        assert b"event: transition\ndata: " in rest
        assert not server.path.exists()
        resp.release()


def status_daemon(node: Node, tail: dict[str, Any]) -> Any:
    """What the status route needs of the daemon: its node, the status around the machines."""
    head = {"node": "n1", "pid": 7, "machines_dir": Path("/m")}  # a Path: json's default=str

    def status() -> dict[str, Any]:
        return {**head, "machines": [m.status() for m in node.machines.values()], **tail}

    return SimpleNamespace(
        node=node, status_head=lambda: head, status_tail=lambda: tail, status=status
    )


@pytest.mark.parametrize("machines", [0, 1, 2, 5])
async def test_the_status_body_is_json_dumps_of_the_status_byte_for_byte(
    api: Any, monkeypatch: pytest.MonkeyPatch, machines: int
) -> None:
    monkeypatch.setattr(api_module, "STATUS_PART", 2)  # 5 machines: three parts
    node, _ = api
    for i in range(machines):
        await node.add(replace(machine_spec(), name=f"m{i}"))
    if machines:
        node.get("m0").data["when"] = Path("/x")
    daemon = status_daemon(node, {"events": {"emitted": 3}, "problems": []})
    parts = api_module.status_body(daemon)
    assert b"".join(parts) == json.dumps(daemon.status(), default=str).encode()
    assert len(parts) == 2 + (machines + 1) // 2  # head, a part per two machines, tail


async def test_get_status_answers_the_whole_body_with_its_length(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "steward.db")
    await store.open()
    node = Node(node_services(store=store))
    for i in range(300):  # more than one part
        await node.add(replace(machine_spec(), name=f"m{i}"))
    daemon = status_daemon(node, {"problems": [{"file": "x.yaml"}]})
    server = ControlSocket(daemon, tmp_path / "api.sock")
    await server.start()
    connector = aiohttp.UnixConnector(path=str(server.path))
    try:
        async with (
            aiohttp.ClientSession("http://steward", connector=connector) as client,
            client.get("/v1/status") as resp,
        ):
            body = await resp.read()
            assert resp.status == 200
            assert int(resp.headers["Content-Length"]) == len(body)
        expected = json.loads(json.dumps(daemon.status(), default=str))
        assert json.loads(body) == expected
        assert [m["name"] for m in expected["machines"]] == [f"m{i}" for i in range(300)]
    finally:
        await server.stop()
        await node.stop()
        await store.close()
