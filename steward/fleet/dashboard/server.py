"""The dashboard's HTTP side (aiohttp): the page, the fleet as JSON, a machine's graph, and
the live stream. Every route is a GET: nothing here changes a node.

- ``/``, ``/app.js``, ``/style.css``: the page (files shipped beside this module, read once at
  start).
- ``/api/fleet``: the fleet now (``documents.fleet_doc``).
- ``/api/graph/{node}/{machine}``: the machine's states and transitions (its ``.graph`` key).
- ``/api/events``: server-sent events: ``snapshot`` (the fleet) first, then ``machine``,
  ``machine-removed``, ``node`` (a heartbeat, or online/offline flipping), ``node-removed``.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

from aiohttp import web

from steward import __version__
from steward.fleet.dashboard.broadcast import FleetBroadcast

KEEPALIVE = 15.0  # seconds between two comments on an idle stream (proxies close silent ones)
RETRY_MS = 2000  # how soon a page's EventSource reconnects after the stream ends
ASSETS = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # the page loads only its own files and talks only to this server
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
}


def read_assets() -> dict[str, bytes]:
    """The page's files, from the installed package (blocking: call it in a thread)."""
    here = resources.files(__package__ or "steward.fleet.dashboard")
    out = {}
    for _, (name, _) in ASSETS.items():
        data = here.joinpath(name).read_bytes()
        out[name] = data.replace(b"{{version}}", __version__.encode())
    return out


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda d: json.dumps(d, default=str), headers=HEADERS
    )


def build_app(broadcast: FleetBroadcast, assets: dict[str, bytes]) -> web.Application:
    routes = web.RouteTableDef()

    for path, (name, content_type) in ASSETS.items():

        async def asset(_: web.Request, name: str = name, kind: str = content_type) -> web.Response:
            return web.Response(body=assets[name], content_type=kind, headers=HEADERS)

        routes.get(path)(asset)

    @routes.get("/api/fleet")
    async def fleet(_: web.Request) -> web.Response:
        return _json(broadcast.snapshot())

    @routes.get("/api/graph/{node}/{machine}")
    async def graph(request: web.Request) -> web.Response:
        node, machine = request.match_info["node"], request.match_info["machine"]
        doc = await broadcast.feed.graph(node, machine)
        if doc is None:
            return _json({"error": f"no graph for machine {machine!r} on node {node!r}"}, 404)
        return _json(doc)

    @routes.get("/api/events")
    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={**HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await resp.prepare(request)
        snapshot, listener = broadcast.listen()
        try:
            await resp.write(b"retry: %d\n\n" % RETRY_MS + snapshot)
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE):
                        message = await listener.next()
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                if message is None:
                    break
                await resp.write(message)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            broadcast.forget(listener)
        return resp

    app = web.Application()
    app.add_routes(routes)
    return app


class DashboardServer:
    """The broadcast and the HTTP server: ``start()`` loads the bucket and binds, ``stop()``
    closes both; ``port`` is the bound port once started (0 asks for a free one)."""

    def __init__(self, broadcast: FleetBroadcast, host: str, port: int) -> None:
        self.broadcast = broadcast
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        """Load the bucket, then bind; OSError if the address is taken."""
        assets = await asyncio.to_thread(read_assets)
        await self.broadcast.start()
        # open event streams must not hold a stopping dashboard up
        runner = web.AppRunner(
            build_app(self.broadcast, assets), access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            await self.broadcast.stop()
            raise
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break

    async def stop(self) -> None:
        await self.broadcast.stop()  # ends every open stream first
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
