"""The CLI's side of the control API: JSON over HTTP/1.1 on the daemon's Unix socket.

A command makes one request and exits, so it needs no event loop: a blocking ``AF_UNIX``
socket, with ``h11`` (a small pure-Python HTTP/1.1 state machine, the daemon's server speaks
through it too) writing the request and parsing the response. The stdlib's ``http.client``
did the same but took ~10 ms more to import (it loads ``email.parser`` and ``ssl``); aiohttp's
client ~0.1 s. A followed event stream (Server-Sent Events) is read line by line as it comes.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import h11

from steward.errors import ApiError

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = 30.0  # seconds for one request's connect and each read
CONNECT_TIMEOUT = 10.0  # a followed stream waits for events without a read timeout
READ_SIZE = 65536


class Exchange:
    """One request and its response on a new connection to ``socket_path``: h11 keeps the
    protocol, this class only moves bytes. Use as a context manager (it closes the socket)."""

    def __init__(self, socket_path: Path, timeout: float | None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(str(socket_path))
        except BaseException:
            self.sock.close()
            raise
        self.http = h11.Connection(h11.CLIENT)

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def request(self, method: str, target: str, body: bytes | None = None) -> int:
        """Send the request; the response's status code once its head arrived."""
        headers = [("Host", "steward"), ("Accept", "application/json")]
        if body is not None:
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        self._send(h11.Request(method=method, target=target, headers=headers))
        if body:
            self._send(h11.Data(data=body))
        self._send(h11.EndOfMessage())
        while True:
            event = self._next()
            if isinstance(event, h11.Response):
                return int(event.status_code)
            if not isinstance(event, h11.InformationalResponse):
                raise h11.RemoteProtocolError(f"no response head ({type(event).__name__})")

    def chunks(self) -> Iterator[bytes]:
        """The response body as it arrives."""
        while True:
            event = self._next()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return

    def body(self) -> bytes:
        return b"".join(self.chunks())

    def _send(self, event: h11.Event) -> None:
        data = self.http.send(event)
        if data:
            self.sock.sendall(data)

    def _next(self) -> object:  # an h11 event, or h11.PAUSED
        while True:
            event = self.http.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.http.receive_data(self.sock.recv(READ_SIZE))  # b"": the daemon closed


class ApiClient:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def status(self) -> dict[str, Any]:
        return self._object(self._request("GET", "/v1/status"))

    def machine(self, name: str) -> dict[str, Any]:
        return self._object(self._request("GET", f"/v1/machines/{quote(name, safe='')}"))

    def transition(self, machine: str, transition: str) -> dict[str, Any]:
        path = f"/v1/machines/{quote(machine, safe='')}/transition"
        return self._object(self._request("POST", path, {"transition": transition}))

    def history(self, machine: str, limit: int) -> list[dict[str, Any]]:
        """The machine's last ``limit`` transitions with their causes, oldest first."""
        data = self._request("GET", f"/v1/machines/{quote(machine, safe='')}/history?limit={limit}")
        if not isinstance(data, list):
            raise ApiError("daemon sent an unexpected reply")
        return data

    def events(
        self, *, follow: bool, machine: str | None, kind: str | None, recent: int
    ) -> Iterator[bytes]:
        """Each event (structured CloudEvent JSON): the recent ones, then live with ``follow``
        (until the daemon closes the stream). ``kind`` is an event type's value."""
        params = {"recent": str(recent)}
        if machine:
            params["machine"] = machine
        if kind:
            params["type"] = kind
        if follow:
            params["follow"] = "1"
        path = f"/v1/events?{urlencode(params)}"
        if not follow:
            for event in self._request("GET", path):
                yield json.dumps(event).encode()
            return
        self.require_socket()
        try:
            with Exchange(self.socket_path, CONNECT_TIMEOUT) as exchange:
                status = exchange.request("GET", path)
                if status >= 400:
                    raise ApiError(_error_of(_json_of(exchange.body(), status), status))
                exchange.sock.settimeout(None)  # a followed stream lasts as long as the user wants
                pending = b""
                for chunk in exchange.chunks():
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line.startswith(b"data: "):
                            yield line[6:]
        except (OSError, h11.ProtocolError) as exc:
            raise self._unreachable(exc) from exc

    def require_socket(self) -> None:
        if not self.socket_path.exists():
            raise ApiError(
                f"no steward daemon socket at {self.socket_path} (is `steward run` running? "
                "point at it with --socket or --state-dir)"
            )

    def _object(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError("daemon sent an unexpected reply")
        return data

    def _unreachable(self, exc: Exception) -> ApiError:
        if isinstance(exc, TimeoutError):
            return ApiError(f"the steward daemon at {self.socket_path} did not answer")
        return ApiError(f"cannot reach the steward daemon at {self.socket_path}: {exc}")

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        self.require_socket()
        payload = None if body is None else json.dumps(body).encode()
        try:
            with Exchange(self.socket_path, TIMEOUT) as exchange:
                status = exchange.request(method, path, payload)
                raw = exchange.body()
        except (OSError, h11.ProtocolError) as exc:
            raise self._unreachable(exc) from exc
        data = _json_of(raw, status)
        if status >= 400:
            raise ApiError(_error_of(data, status))
        return data


def _json_of(raw: bytes, status: int) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(f"daemon sent a non-JSON reply ({status})") from exc


def _error_of(data: Any, status: int) -> str:
    message = data.get("error") if isinstance(data, dict) else None
    return str(message) if message else f"daemon answered {status}"
