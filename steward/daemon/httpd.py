"""The daemon's HTTP/1.1 servers (the control socket and ``/metrics``): h11 on asyncio streams.

h11 is the protocol state machine (parsing, framing, keep-alive rules); this module is the
little around it that a server needs:

- ``Routes``: ``(method, "/v1/machines/{name}")`` → handler. A path no route matches is 404,
  a path matched with another method 405 with ``Allow`` (GET routes answer HEAD too).
- ``Request`` (method, path parameters, query, headers, body) and ``Response``.
- ``EventStream``: a response whose body a producer writes as it goes (Server-Sent Events);
  it ends when the producer returns, the client goes, or the server stops.
- ``HttpServer``: one task per connection, keep-alive and pipelined requests, bodies by
  Content-Length or chunked up to ``MAX_BODY`` (else 413), a malformed request 400 and the
  connection closed, an idle connection closed after ``IDLE_TIMEOUT``; ``stop()`` closes the
  listener, ends open streams cleanly and gives a running handler ``STOP_GRACE`` to finish.

Errors the server makes itself are ``text/plain`` ``"<code>: <reason>"``, as aiohttp answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

import h11

log = logging.getLogger("steward.http")

MAX_BODY = 1024 * 1024  # bytes of request body (aiohttp's client_max_size)
MAX_HEAD = 16 * 1024  # bytes of request line and headers (h11's default)
IDLE_TIMEOUT = 75.0  # seconds a connection may wait for (the rest of) its next request
STOP_GRACE = 1.0  # seconds a running handler gets to finish when the server stops
READ_SIZE = 64 * 1024

JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Mapping[str, str]  # from the route's {name} segments, percent-decoded
    query: Mapping[str, str]  # the first value of each query key
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes | tuple[bytes, ...] = b""  # a tuple: parts written one after the other
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def parts(self) -> tuple[bytes, ...]:
        return (self.body,) if isinstance(self.body, bytes) else self.body


Send = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class EventStream:
    """A response of unknown length: ``produce(send)`` writes its body until it returns."""

    produce: Callable[[Send], Awaitable[None]]
    status: int = 200
    headers: tuple[tuple[str, str], ...] = (
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
    )


Handler = Callable[[Request], Awaitable[Response | EventStream]]


def plain(status: int, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """The server's own error responses: ``404: Not Found``."""
    text = f"{status}: {HTTPStatus(status).phrase}"
    return Response(status, text.encode(), "text/plain; charset=utf-8", headers)


@dataclass(frozen=True)
class _Route:
    method: str
    segments: tuple[str, ...]  # "{name}" is a parameter
    handler: Handler

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        params = {}
        for want, got in zip(self.segments, segments, strict=True):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    return None
                params[want[1:-1]] = unquote(got)
            elif want != got:
                return None
        return params


@dataclass
class Routes:
    _routes: list[_Route] = field(default_factory=list)

    def add(self, method: str, path: str, handler: Handler) -> None:
        self._routes.append(_Route(method, tuple(path.split("/")), handler))

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._decorator("GET", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self._decorator("POST", path)

    def _decorator(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, path, handler)
            return handler

        return register

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | Response:
        """The handler and path parameters for a request, or the 404/405 to answer."""
        segments = path.split("/")
        allowed: list[str] = []
        for route in self._routes:
            params = route.match(segments)
            if params is None:
                continue
            if method == route.method or (method == "HEAD" and route.method == "GET"):
                return route.handler, params
            allowed += ["GET", "HEAD"] if route.method == "GET" else [route.method]
        if allowed:
            return plain(405, (("Allow", ",".join(dict.fromkeys(allowed))),))
        return plain(404)


class _Phase(Enum):
    WAITING = "waiting"  # for a request: may be closed at once when the server stops
    HANDLING = "handling"  # a handler runs: gets STOP_GRACE
    STREAMING = "streaming"  # an EventStream: ends cleanly when the server stops


class _Closed(Exception):
    """The client went, or sent something we cannot answer on this connection."""


class HttpServer:
    """Serves ``routes`` on the listener ``listen(callback)`` opens (Unix or TCP)."""

    def __init__(self, routes: Routes) -> None:
        self._routes = routes
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], _Phase] = {}
        self._stopping = asyncio.Event()

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    async def start_unix(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=path)

    async def start_tcp(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)

    async def stop(self) -> None:
        """Stop listening; end open streams, close idle connections, cancel what outlives
        ``STOP_GRACE``."""
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        for task, phase in list(self._connections.items()):
            if phase is _Phase.WAITING:
                task.cancel()
        tasks = list(self._connections)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # one connection ----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = _Phase.WAITING
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while not self._stopping.is_set():
                self._connections[task] = _Phase.WAITING
                request = await self._next_request(conn, reader, writer)
                if request is None:
                    break
                self._connections[task] = _Phase.HANDLING
                answer = await self._handle(request)
                if isinstance(answer, EventStream):
                    self._connections[task] = _Phase.STREAMING
                    await self._stream(conn, reader, writer, request, answer)
                    break
                await self._respond(conn, writer, answer, head_only=request.method == "HEAD")
                if conn.our_state is h11.MUST_CLOSE or self._stopping.is_set():
                    break
                conn.start_next_cycle()
        except (_Closed, ConnectionError):
            pass
        except asyncio.CancelledError:
            # stop(), or the loop ending: the connection just closes. (Re-raised, 3.11's
            # start_server callback would log the cancelled task as an error.)
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _next_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        """The next whole request, or None once the client closed between requests. A
        malformed or oversized one is answered (400, 431, 413) and the connection closed."""
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                await self._refuse(conn, writer, exc.error_status_hint)
                raise _Closed from exc
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:  # curl asks, for bodies > 1 KiB
                    writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    raise _Closed from None
                if not data and head is None and conn.their_state is h11.IDLE:
                    return None  # a clean close between requests
                conn.receive_data(data)  # b"": the end, which h11 judges
                continue
            if isinstance(event, h11.Request):
                head = event
                length = _content_length(event)
                if length is not None and length > MAX_BODY:
                    await self._refuse(conn, writer, 413)
                    raise _Closed
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    await self._refuse(conn, writer, 413)
                    raise _Closed
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return _request(head, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None
            # PAUSED cannot happen here: each cycle starts after the response is done

    async def _handle(self, request: Request) -> Response | EventStream:
        resolved = self._routes.resolve(request.method, request.path)
        if isinstance(resolved, Response):
            return resolved
        handler, params = resolved
        try:
            return await handler(_with_params(request, params))
        except Exception:
            log.exception("error handling %s %s", request.method, request.path)
            return plain(500)

    async def _respond(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: Response,
        *,
        head_only: bool = False,
    ) -> None:
        parts = response.parts
        headers = [
            ("Content-Type", response.content_type),
            *response.headers,
            ("Content-Length", str(sum(map(len, parts)))),
        ]
        if self._stopping.is_set():
            headers.append(("Connection", "close"))
        writer.write(conn.send(_head(response.status, headers)))
        if not head_only:  # HEAD: GET's headers, no body
            for part in parts:
                if part:
                    writer.write(conn.send(h11.Data(data=part)))
                    await writer.drain()  # a big body is not copied whole into the buffer
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    async def _refuse(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int
    ) -> None:
        """Answer a request we will not read on, and close."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        response = plain(status, (("Connection", "close"),))
        with contextlib.suppress(h11.LocalProtocolError):
            await self._respond(conn, writer, response)

    async def _stream(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: Request,
        stream: EventStream,
    ) -> None:
        writer.write(conn.send(_head(stream.status, list(stream.headers))))
        await writer.drain()
        if request.method != "HEAD":

            async def send(data: bytes) -> None:
                writer.write(conn.send(h11.Data(data=data)))
                await writer.drain()

            producing = asyncio.ensure_future(stream.produce(send))
            client_gone = asyncio.ensure_future(_until_eof(reader))
            stopping = asyncio.ensure_future(self._stopping.wait())
            waits = {producing, client_gone, stopping}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in waits:
                    t.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
            if client_gone.done() and not client_gone.cancelled():
                raise _Closed  # nobody to end the stream for
            failure = None if producing.cancelled() else producing.exception()
            if isinstance(failure, ConnectionError):
                raise _Closed from failure  # a write failed: the client went
            if failure is not None:
                log.error("event stream of %s failed", request.path, exc_info=failure)
        writer.write(conn.send(h11.EndOfMessage()))  # the last chunk: a clean end
        await writer.drain()


def _head(status: int, headers: list[tuple[str, str]]) -> h11.Response:
    return h11.Response(
        status_code=status, headers=headers, reason=HTTPStatus(status).phrase.encode()
    )


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Returns when the client closes its side (what it sends meanwhile is ignored)."""
    while await reader.read(READ_SIZE):
        pass


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)  # h11 checked it is a number
    return None


def _request(head: h11.Request, body: bytes) -> Request:
    target = head.target.decode("ascii", "replace")
    path, _, query = target.partition("?")
    first: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        first.setdefault(key, value)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in head.headers}
    return Request(head.method.decode("ascii"), path, {}, first, headers, body)


def _with_params(request: Request, params: dict[str, str]) -> Request:
    return Request(
        request.method, request.path, params, request.query, request.headers, request.body
    )
