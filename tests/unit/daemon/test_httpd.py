"""The daemon's HTTP plumbing (``httpd``) on a real Unix socket, spoken to in raw bytes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from steward.daemon import httpd
from steward.daemon.httpd import EventStream, HttpServer, Request, Response, Routes, Send

DEADLINE = 5.0


@dataclass
class Streams:
    """What the test's event stream did: the lines it may send, and whether it ended."""

    lines: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


def routes_for(streams: Streams) -> Routes:
    routes = Routes()

    @routes.get("/things/{name}")
    async def thing(request: Request) -> Response:
        body = {"name": request.params["name"], "query": dict(request.query)}
        return Response(body=json.dumps(body).encode())

    @routes.post("/things/{name}")
    async def post(request: Request) -> Response:
        return Response(201, request.body, "application/octet-stream")

    @routes.get("/parts")
    async def parts(_: Request) -> Response:
        return Response(body=(b"[1, ", b"", b"2" * 100_000, b"]"))

    @routes.get("/broken")
    async def broken(_: Request) -> Response:
        raise RuntimeError("a bug")

    @routes.get("/stream")
    async def stream(_: Request) -> EventStream:
        async def produce(send: Send) -> None:
            streams.started.set()
            try:
                while True:
                    await send(await streams.lines.get())
            finally:
                streams.ended.set()

        return EventStream(produce)

    return routes


@pytest.fixture
def streams() -> Streams:
    return Streams()


@pytest.fixture
async def server(tmp_path: Path, streams: Streams) -> AsyncIterator[HttpServer]:
    server = HttpServer(routes_for(streams))
    await server.start_unix(str(tmp_path / "h.sock"))
    try:
        yield server
    finally:
        await server.stop()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path: Path) -> Client:
        return cls(*await asyncio.open_unix_connection(str(path)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """One response with a Content-Length body: status, headers (lower-case), body."""
        async with asyncio.timeout(DEADLINE):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status, headers = parse_head(head)
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def closed(self) -> bool:
        """True once the server closed the connection (EOF), within the deadline."""
        async with asyncio.timeout(DEADLINE):
            return await self.reader.read() == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


def sock(server: HttpServer) -> Path:
    return Path(server.sockets[0].getsockname())


async def test_a_route_answers_with_decoded_params_and_the_first_query_value(
    server: HttpServer,
) -> None:
    client = await Client.open(sock(server))
    await client.send(b"GET /things/a%2Fb?x=1&x=2&y= HTTP/1.1\r\nHost: s\r\n\r\n")
    status, headers, body = await client.response()
    assert status == 200
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(body) == {"name": "a/b", "query": {"x": "1", "y": ""}}
    await client.close()


async def test_pipelined_requests_are_answered_in_order_on_one_connection(
    server: HttpServer,
) -> None:
    client = await Client.open(sock(server))
    await client.send(
        b"GET /things/one HTTP/1.1\r\nHost: s\r\n\r\n"
        b"POST /things/two HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /things/three HTTP/1.1\r\nHost: s\r\n\r\n"
    )
    first, second, third = [await client.response() for _ in range(3)]
    assert json.loads(first[2])["name"] == "one"
    assert (second[0], second[2]) == (201, b"hello")
    assert json.loads(third[2])["name"] == "three"
    await client.send(b"GET /things/four HTTP/1.1\r\nHost: s\r\n\r\n")  # still kept alive
    assert json.loads((await client.response())[2])["name"] == "four"
    await client.close()


async def test_a_chunked_body_is_read(server: HttpServer) -> None:
    client = await Client.open(sock(server))
    await client.send(
        b"POST /things/x HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert (await client.response())[2] == b"abcde"
    await client.close()


async def test_a_malformed_request_is_400_and_the_connection_closed(server: HttpServer) -> None:
    client = await Client.open(sock(server))
    await client.send(b"NOT HTTP AT ALL\r\n\r\n")
    status, headers, body = await client.response()
    assert (status, body) == (400, b"400: Bad Request")
    assert headers["connection"] == "close"
    assert await client.closed()
    await client.close()


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_oversized_body_is_413_and_the_connection_closed(
    server: HttpServer, chunked: bool
) -> None:
    client = await Client.open(sock(server))
    size = httpd.MAX_BODY + 1
    if chunked:  # no length up front: refused once what came exceeds the limit
        await client.send(
            b"POST /things/x HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        await client.send(b"%x\r\n" % size + b"x" * size + b"\r\n")
    else:  # refused on the header, before any of the body is read
        await client.send(
            b"POST /things/x HTTP/1.1\r\nHost: s\r\nContent-Length: %d\r\n\r\n" % size
        )
    status, _, body = await client.response()
    assert (status, body) == (413, b"413: Request Entity Too Large")
    assert await client.closed()
    await client.close()


async def test_an_unknown_route_is_404_and_a_wrong_method_405(server: HttpServer) -> None:
    client = await Client.open(sock(server))
    await client.send(b"GET /nothing HTTP/1.1\r\nHost: s\r\n\r\n")
    status, headers, body = await client.response()
    assert (status, headers["content-type"], body) == (
        404,
        "text/plain; charset=utf-8",
        b"404: Not Found",
    )
    await client.send(b"DELETE /things/x HTTP/1.1\r\nHost: s\r\n\r\n")
    status, headers, body = await client.response()
    assert (status, headers["allow"], body) == (405, "GET,HEAD,POST", b"405: Method Not Allowed")
    await client.send(b"POST /broken HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\n\r\n")
    assert (await client.response())[1]["allow"] == "GET,HEAD"
    await client.close()


async def test_head_gets_the_headers_and_no_body(server: HttpServer) -> None:
    client = await Client.open(sock(server))
    await client.send(b"HEAD /things/x HTTP/1.1\r\nHost: s\r\n\r\n")
    async with asyncio.timeout(DEADLINE):
        status, headers = parse_head(await client.reader.readuntil(b"\r\n\r\n"))
    assert status == 200 and int(headers["content-length"]) > 0
    await client.send(b"GET /things/y HTTP/1.1\r\nHost: s\r\n\r\n")  # no body came between
    assert json.loads((await client.response())[2])["name"] == "y"
    await client.close()


async def test_a_body_in_parts_is_sent_whole_with_its_length_and_not_for_head(
    server: HttpServer,
) -> None:
    client = await Client.open(sock(server))
    await client.send(b"GET /parts HTTP/1.1\r\nHost: s\r\n\r\n")
    status, headers, body = await client.response()
    assert (status, int(headers["content-length"])) == (200, 100_005)
    assert body == b"[1, " + b"2" * 100_000 + b"]"
    await client.send(b"HEAD /parts HTTP/1.1\r\nHost: s\r\n\r\n")
    async with asyncio.timeout(DEADLINE):
        _, headers = parse_head(await client.reader.readuntil(b"\r\n\r\n"))
    assert int(headers["content-length"]) == 100_005
    await client.send(b"GET /things/y HTTP/1.1\r\nHost: s\r\n\r\n")  # no body came between
    assert json.loads((await client.response())[2])["name"] == "y"
    await client.close()


async def test_a_failing_handler_is_500_and_logged(
    server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = await Client.open(sock(server))
    with caplog.at_level(logging.ERROR, "steward.http"):
        await client.send(b"GET /broken HTTP/1.1\r\nHost: s\r\n\r\n")
        status, _, body = await client.response()
    assert (status, body) == (500, b"500: Internal Server Error")
    assert "error handling GET /broken" in caplog.text
    await client.close()


async def open_stream(server: HttpServer, streams: Streams) -> Client:
    client = await Client.open(sock(server))
    await client.send(b"GET /stream HTTP/1.1\r\nHost: s\r\n\r\n")
    async with asyncio.timeout(DEADLINE):
        status, headers = parse_head(await client.reader.readuntil(b"\r\n\r\n"))
        await streams.started.wait()
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    assert headers["transfer-encoding"] == "chunked"
    streams.lines.put_nowait(b"data: 1\n\n")
    async with asyncio.timeout(DEADLINE):
        assert await client.reader.readexactly(14) == b"9\r\ndata: 1\n\n\r\n"  # one chunk
    return client


async def test_a_client_leaving_mid_stream_ends_its_producer(
    server: HttpServer, streams: Streams
) -> None:
    client = await open_stream(server, streams)
    await client.close()
    async with asyncio.timeout(DEADLINE):  # noticed without anything to send
        await streams.ended.wait()


async def test_stop_ends_open_streams_cleanly_and_closes_idle_connections(
    tmp_path: Path, streams: Streams
) -> None:
    server = HttpServer(routes_for(streams))
    await server.start_unix(str(tmp_path / "h.sock"))
    path = sock(server)
    client = await open_stream(server, streams)
    idle = await Client.open(path)
    await idle.send(b"GET /things/x HTTP/1.1\r\nHost: s\r\n\r\n")
    await idle.response()  # answered, then kept alive
    loop = asyncio.get_running_loop()
    started = loop.time()
    await server.stop()
    assert loop.time() - started < httpd.STOP_GRACE  # nothing waited for the grace
    assert streams.ended.is_set()
    async with asyncio.timeout(DEADLINE):
        assert await client.reader.read() == b"0\r\n\r\n"  # the last chunk, then EOF
    assert await idle.closed()
    with pytest.raises(OSError):
        await asyncio.open_unix_connection(str(path))
    await client.close()
    await idle.close()
