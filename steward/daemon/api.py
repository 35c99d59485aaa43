"""The control API: HTTP/1.1 on a Unix socket (mode 0660), served by ``httpd``.

    GET  /v1/status                              node, machines, load problems, events
    GET  /v1/machines/{name}                     one machine
    POST /v1/machines/{name}/transition          {"transition": "..."} -> the committed result
    GET  /v1/machines/{name}/history?limit=N     its last N transitions with their causes
                                                 (default 100), oldest first (JSON list)
    GET  /v1/events?machine=&type=&recent=N      the last N events (JSON list of CloudEvents)
    GET  /v1/events?follow=1&…                   Server-Sent Events: the recent ones, then live

Errors are JSON ``{"error": "..."}`` with 404 (no such machine), 409 (transition rejected),
400 (bad request) or 500; the server's own (no such route 404, wrong method 405, malformed
request 400, body over 1 MiB 413) are ``text/plain``, as aiohttp answered them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.daemon.httpd import EventStream, HttpServer, Request, Response, Routes, Send
from steward.errors import ConfigError, MachineNotFound, StoreError, TransitionRejected
from steward.events.envelope import Envelope, EventKind

if TYPE_CHECKING:
    from steward.daemon.server import Daemon

SOCKET_MODE = 0o660
KEEPALIVE = 15.0  # seconds between SSE keepalive comments
MAX_UNIX_PATH = 107
HISTORY_LIMIT = 100  # transitions /history answers with unless asked for another number
STATUS_PART = 256  # machines encoded into one part of the status body


def _json(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, default=str).encode())


def build_routes(daemon: Daemon) -> Routes:
    routes = Routes()

    @routes.get("/v1/status")
    async def status(_: Request) -> Response:
        return Response(body=status_body(daemon))

    @routes.get("/v1/machines/{name}")
    async def machine(request: Request) -> Response:
        try:
            return _json(daemon.node.get(request.params["name"]).status())
        except MachineNotFound as exc:
            return _json({"error": str(exc)}, 404)

    @routes.get("/v1/machines/{name}/history")
    async def history(request: Request) -> Response:
        name = request.params["name"]
        try:
            limit = int(request.query.get("limit", str(HISTORY_LIMIT)))
        except ValueError:
            limit = 0
        if limit < 1:
            return _json({"error": "limit must be a positive number"}, 400)
        try:
            # a removed machine's history stays on disk and readable
            if name not in daemon.node.machines and await daemon.store.load(name) is None:
                raise MachineNotFound(name)
            entries = await daemon.store.history(name, limit)
        except MachineNotFound as exc:
            return _json({"error": str(exc)}, 404)
        except StoreError as exc:
            return _json({"error": str(exc)}, 500)
        return _json([e.as_dict() for e in entries])

    @routes.post("/v1/machines/{name}/transition")
    async def transition(request: Request) -> Response:
        try:
            body = json.loads(request.body)
        except ValueError:
            return _json({"error": 'body must be JSON: {"transition": NAME}'}, 400)
        name = body.get("transition") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            return _json({"error": 'body must be JSON: {"transition": NAME}'}, 400)
        try:
            machine = daemon.node.get(request.params["name"])
            result = await machine.fire(name, cause="manual")
        except MachineNotFound as exc:
            return _json({"error": str(exc)}, 404)
        except TransitionRejected as exc:
            return _json({"error": str(exc), "state": exc.state}, 409)
        except StoreError as exc:
            return _json({"error": str(exc)}, 500)
        return _json(result.as_dict())

    @routes.get("/v1/events")
    async def events(request: Request) -> Response | EventStream:
        q = request.query
        try:
            kind = EventKind(q["type"]) if q.get("type") else None
            recent = int(q.get("recent", "100"))
        except ValueError:
            kinds = ", ".join(k.value for k in EventKind)
            return _json({"error": f"type must be one of {kinds}; recent a number"}, 400)
        machine = q.get("machine") or None
        local = daemon.events.local
        if q.get("follow") not in ("1", "true", "yes"):
            backlog = local.recent(machine, kind, recent) if recent > 0 else []
            body = b"[" + b",".join(e.body for e in backlog) + b"]"
            return Response(body=body, content_type="application/json")

        async def follow(send: Send) -> None:
            # the backlog and the subscription in one step: no event falls between them
            backlog = local.recent(machine, kind, recent) if recent > 0 else []
            sub = local.subscribe(machine, kind)
            try:
                for env in backlog:
                    await send(_sse(env))
                while True:
                    try:
                        async with asyncio.timeout(KEEPALIVE):
                            env = await sub.next()
                    except TimeoutError:
                        await send(b": keepalive\n\n")
                        continue
                    await send(_sse(env))
            finally:
                sub.close()

        return EventStream(follow)

    return routes


def status_body(daemon: Daemon) -> tuple[bytes, ...]:
    """``json.dumps(daemon.status(), default=str)``, byte for byte, in parts of
    ``STATUS_PART`` machines: each machine's status dict is encoded as soon as it is made, so
    10,000 machines never hold 10,000 dicts, then the whole text, then its bytes at once
    (~40 MB at the peak; the parts are the ~9 MB the body is). Built without a pause, so it
    is one moment's status, as before."""
    encode = json.JSONEncoder(default=str).encode  # what json.dumps(..., default=str) uses
    head, tail = encode(daemon.status_head()), encode(daemon.status_tail())
    machines = list(daemon.node.machines.values())
    parts = [f'{head[:-1]}, "machines": ['.encode()]
    for start in range(0, len(machines), STATUS_PART):
        text = ", ".join(encode(m.status()) for m in machines[start : start + STATUS_PART])
        parts.append((", " + text if start else text).encode())
    parts.append(f"], {tail[1:]}".encode())
    return tuple(parts)


def _sse(env: Envelope) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        env.id.encode(),
        env.kind.value.encode(),
        env.body,
    )


class ControlSocket:
    """Serves the API on a Unix socket; ``start()`` binds, ``stop()`` unbinds and unlinks."""

    def __init__(self, daemon: Daemon, path: Path) -> None:
        self.path = path
        self._server = HttpServer(build_routes(daemon))

    async def start(self) -> None:
        if len(str(self.path).encode()) > MAX_UNIX_PATH:
            raise ConfigError(
                f"control socket path {self.path} is longer than {MAX_UNIX_PATH} bytes; "
                "set a shorter one with --socket or api.socket"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(self.path)
        await self._server.start_unix(str(self.path))
        self.path.chmod(SOCKET_MODE)

    async def stop(self) -> None:
        """Ends open event streams cleanly; a running request gets a second to finish."""
        await self._server.stop()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _remove_stale(path: Path) -> None:
    """Remove a socket left by a dead daemon; refuse if one still answers there."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
        return
    finally:
        probe.close()
    raise ConfigError(f"another steward daemon is listening on {path}")
