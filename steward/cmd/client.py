"""The CLI's side of the control API: JSON over HTTP on the daemon's Unix socket."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from steward.errors import ApiError

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

    def require_socket(self) -> None:
        if not self.socket_path.exists():
            raise ApiError(
                f"no steward daemon socket at {self.socket_path} (is `steward run` running? "
                "point at it with --socket or --state-dir)"
            )

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        self.require_socket()
        return asyncio.run(self._request(method, path, body))

    async def _request(self, method: str, path: str, body: Any) -> dict[str, Any]:
        connector = aiohttp.UnixConnector(path=str(self.socket_path))
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                session.request(method, f"http://steward{path}", json=body) as resp,
            ):
                try:
                    data = await resp.json(content_type=None)
                except ValueError as exc:
                    raise ApiError(f"daemon sent a non-JSON reply ({resp.status})") from exc
                if resp.status >= 400:
                    message = data.get("error") if isinstance(data, dict) else None
                    raise ApiError(message or f"daemon answered {resp.status}")
                if not isinstance(data, dict):
                    raise ApiError("daemon sent an unexpected reply")
                return data
        except aiohttp.ClientConnectionError as exc:
            raise ApiError(f"cannot reach the steward daemon at {self.socket_path}: {exc}") from exc
        except TimeoutError as exc:
            raise ApiError(f"the steward daemon at {self.socket_path} did not answer") from exc
