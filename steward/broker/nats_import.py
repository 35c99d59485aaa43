"""nats-py for the daemon, without aiohttp unless a server URL is ws:// or wss://.

nats-py's ``nats/aio/transport.py`` imports aiohttp (and multidict) when it is first
imported, inside ``try: … except ImportError: aiohttp = None``, for its websocket transport
alone; plain and TLS connections never touch it. aiohttp costs the daemon ~14 MiB of RSS and
~0.2 s of start, so ``import_nats`` imports nats-py the first time with ``None`` standing in
for ``sys.modules["aiohttp"]``: ``import aiohttp`` then raises ImportError and nats-py takes
its own no-websocket branch. The stand-in is removed at once, so anything that imports
aiohttp later (the health watcher's http probe, the archive fetch) gets the real one.

With a ws:// or wss:// server, aiohttp is imported as usual; if nats-py was already imported
without it (an earlier daemon in the same process), it is handed back to nats-py's transport
module, which looks it up when a websocket connection is made.

Everything in the daemon that imports nats-py does it after the ``NatsConnection`` is built
(which calls this), so this is the first import of nats-py in a daemon process.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from urllib.parse import urlsplit

WEBSOCKET_SCHEMES = frozenset({"ws", "wss"})


def needs_websocket(servers: Iterable[str]) -> bool:
    return any(urlsplit(url.strip()).scheme.lower() in WEBSOCKET_SCHEMES for url in servers)


def import_nats(servers: Iterable[str]) -> None:
    """Import nats-py for connections to ``servers`` (see the module's docstring)."""
    websocket = needs_websocket(servers)
    if not websocket and "nats" not in sys.modules and "aiohttp" not in sys.modules:
        sys.modules["aiohttp"] = None  # type: ignore[assignment]  # import aiohttp: ImportError
        try:
            importlib.import_module("nats")
        finally:
            del sys.modules["aiohttp"]
    transport = importlib.import_module("nats.aio.transport")
    if websocket and getattr(transport, "aiohttp", None) is None:
        transport.aiohttp = importlib.import_module("aiohttp")  # type: ignore[attr-defined]
        transport.multidict = importlib.import_module("multidict")  # type: ignore[attr-defined]
