"""The CLI's API client (h11 on a Unix socket) against a real aiohttp server.

The server runs on its own event loop in a thread, as the daemon runs in its own process:
the client blocks, as a command does.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from steward.cmd.client import ApiClient
from steward.errors import ApiError

EVENTS = [{"id": "1", "type": "transition"}, {"id": "2", "type": "watcher"}]


def app() -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/v1/status")
    async def status(_: web.Request) -> web.Response:
        return web.json_response({"node": "n1", "machines": [{"name": "m", "state": "up"}]})

    @routes.post("/v1/machines/{name}/transition")
    async def transition(request: web.Request) -> web.Response:
        body = await request.json()
        if request.match_info["name"] != "m":
            return web.json_response({"error": "no machine named 'x'"}, status=404)
        return web.json_response({"changed": True, "asked": body["transition"]})

    @routes.get("/v1/machines/{name}/history")
    async def history(request: web.Request) -> web.Response:
        if request.match_info["name"] == "text":
            return web.Response(text="not json", status=502)
        return web.json_response([{"seq": int(request.query["limit"])}])

    @routes.get("/v1/events")
    async def events(request: web.Request) -> web.StreamResponse:
        if request.query.get("follow") != "1":
            return web.json_response(EVENTS)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)  # chunked: the client reads it line by line as it comes
        for event in EVENTS:
            await resp.write(b": keepalive\n\n")
            line = b"id: 1\nevent: x\ndata: %s\n\n" % json.dumps(event).encode()
            await resp.write(line[:20])  # one chunk ends inside the data line
            await resp.write(line[20:])
        return resp

    application = web.Application()
    application.add_routes(routes)
    return application


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "s.sock"
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app())

    async def start() -> None:
        await runner.setup()
        await web.UnixSite(runner, str(path)).start()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield path
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_status_and_history_are_the_json_the_daemon_sent(socket_path: Path) -> None:
    client = ApiClient(socket_path)
    assert client.status()["machines"] == [{"name": "m", "state": "up"}]
    assert client.history("m", 7) == [{"seq": 7}]


def test_a_transition_posts_its_name_as_json(socket_path: Path) -> None:
    assert ApiClient(socket_path).transition("m", "open") == {"changed": True, "asked": "open"}


def test_an_error_answer_is_its_message(socket_path: Path) -> None:
    with pytest.raises(ApiError, match=r"^no machine named 'x'$"):
        ApiClient(socket_path).transition("x", "open")
    with pytest.raises(ApiError, match=r"non-JSON reply \(502\)"):
        ApiClient(socket_path).history("text", 1)


def test_recent_events_and_a_followed_stream(socket_path: Path) -> None:
    client = ApiClient(socket_path)
    recent = client.events(follow=False, machine=None, kind=None, recent=5)
    assert [json.loads(body) for body in recent] == EVENTS
    followed = client.events(follow=True, machine="m", kind="transition", recent=5)
    assert [json.loads(body) for body in followed] == EVENTS


def test_no_socket_and_a_dead_socket_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ApiError, match="no steward daemon socket at"):
        ApiClient(tmp_path / "none.sock").status()
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(dead))  # bound, never listening: connecting is refused
        with pytest.raises(ApiError, match="cannot reach the steward daemon at"):
            ApiClient(dead).status()


def test_a_daemon_that_hangs_up_mid_answer_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rude.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def answer_half() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")

    thread = threading.Thread(target=answer_half, daemon=True)
    thread.start()
    try:
        with pytest.raises(ApiError, match="cannot reach the steward daemon at"):
            ApiClient(path).status()
    finally:
        thread.join(10)
        server.close()
