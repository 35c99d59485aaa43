"""The CLI's side of the control API: JSON over HTTP on the daemon's Unix socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from steward.errors import ApiError
from steward.events.envelope import EventKind

TIMEOUT = 30.0


class ApiClient:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")

    def machine(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/machines/{name}")

    def transition(self, machine: str, transition: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/machines/{machine}/transition", {"transition": transition})

    def history(self, machine: str, limit: int) -> list[dict[str, Any]]:
        """The machine's last ``limit`` transitions with their causes, oldest first."""
        self.require_socket()
        data = asyncio.run(
            self._request("GET", f"/v1/machines/{quote(machine, safe='')}/history?limit={limit}")
        )
        if not isinstance(data, list):
            raise ApiError("daemon sent an unexpected reply")
        return data

    async def events(
        self, *, follow: bool, machine: str | None, kind: EventKind | None, recent: int
    ) -> AsyncIterator[bytes]:
        """Each event (structured CloudEvent JSON): the recent ones, then live with ``follow``."""
        params = {"recent": str(recent)}
        if machine:
            params["machine"] = machine
        if kind:
            params["type"] = kind.value
        if follow:
            params["follow"] = "1"
        # no total timeout: a followed stream lasts as long as the user wants
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        try:
            async with (
                self._session(timeout) as session,
                session.get("http://steward/v1/events", params=params) as resp,
            ):
                if resp.status >= 400:
                    data = await resp.json(content_type=None)
                    raise ApiError(data.get("error", f"daemon answered {resp.status}"))
                if not follow:
                    for event in await resp.json(content_type=None):
                        yield json.dumps(event).encode()
                    return
                async for line in resp.content:
                    if line.startswith(b"data: "):
                        yield line[6:].rstrip(b"\n")
        except aiohttp.ClientConnectionError as exc:
            raise self._unreachable(exc) from exc

    def require_socket(self) -> None:
        if not self.socket_path.exists():
            raise ApiError(
                f"no steward daemon socket at {self.socket_path} (is `steward run` running? "
                "point at it with --socket or --state-dir)"
            )

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        self.require_socket()
        data = asyncio.run(self._request(method, path, body))
        if not isinstance(data, dict):
            raise ApiError("daemon sent an unexpected reply")
        return data

    def _session(self, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        connector = aiohttp.UnixConnector(path=str(self.socket_path))
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

    def _unreachable(self, exc: Exception) -> ApiError:
        return ApiError(f"cannot reach the steward daemon at {self.socket_path}: {exc}")

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with (
                self._session(aiohttp.ClientTimeout(total=TIMEOUT)) as session,
                session.request(method, f"http://steward{path}", json=body) as resp,
            ):
                try:
                    data = await resp.json(content_type=None)
                except ValueError as exc:
                    raise ApiError(f"daemon sent a non-JSON reply ({resp.status})") from exc
                if resp.status >= 400:
                    message = data.get("error") if isinstance(data, dict) else None
                    raise ApiError(message or f"daemon answered {resp.status}")
                return data
        except aiohttp.ClientConnectionError as exc:
            raise self._unreachable(exc) from exc
        except TimeoutError as exc:
            raise ApiError(f"the steward daemon at {self.socket_path} did not answer") from exc
