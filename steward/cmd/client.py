"""The CLI's side of the control API: JSON over HTTP on the daemon's Unix socket.

The standard library's ``http.client`` on an ``AF_UNIX`` socket: a command makes one request
and exits, so it needs neither an event loop nor aiohttp's client (~0.1 s of imports). A
followed event stream (Server-Sent Events) is read line by line from the open response.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from steward.errors import ApiError

TIMEOUT = 30.0  # seconds for one request's connect and each read
CONNECT_TIMEOUT = 10.0  # a followed stream waits for events without a read timeout


class UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 to ``socket_path`` (the Host header says ``steward``)."""

    def __init__(self, socket_path: Path, timeout: float | None) -> None:
        super().__init__("steward", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self.socket_path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


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
        # no read timeout: a followed stream lasts as long as the user wants
        conn = UnixConnection(self.socket_path, CONNECT_TIMEOUT)
        try:
            resp = self._send(conn, "GET", path, None)
            if resp.status >= 400:
                raise ApiError(_error_of(_json_of(resp), resp.status))
            assert conn.sock is not None
            conn.sock.settimeout(None)
            for line in resp:
                if line.startswith(b"data: "):
                    yield line[6:].rstrip(b"\n")
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from exc
        finally:
            conn.close()

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

    def _send(
        self, conn: UnixConnection, method: str, path: str, body: Any
    ) -> http.client.HTTPResponse:
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        return conn.getresponse()

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        self.require_socket()
        conn = UnixConnection(self.socket_path, TIMEOUT)
        try:
            resp = self._send(conn, method, path, body)
            data = _json_of(resp)
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from exc
        finally:
            conn.close()
        if resp.status >= 400:
            raise ApiError(_error_of(data, resp.status))
        return data


def _json_of(resp: http.client.HTTPResponse) -> Any:
    raw = resp.read()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(f"daemon sent a non-JSON reply ({resp.status})") from exc


def _error_of(data: Any, status: int) -> str:
    message = data.get("error") if isinstance(data, dict) else None
    return str(message) if message else f"daemon answered {status}"
