"""nagios ``builtin: choria_status`` on the daemon's real connection: OK while NATS answers,
CRITICAL once the server is gone, OK again when it returns."""

from __future__ import annotations

import asyncio
from pathlib import Path

from steward.broker.connection import NatsConnection
from steward.broker.settings import NatsSettings
from steward.watchers.nagios import NagiosWatcher
from tests.support.daemon import until
from tests.support.fakes import fake_context
from tests.support.machines import Handle, machine_yaml, parse
from tests.support.nats_server import NatsServer


async def test_choria_status_follows_the_connection(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "js", tmp_path / "nats.log")
    server.start()
    conn = NatsConnection(NatsSettings(servers=(server.url,)))
    conn.start()
    spec = parse(machine_yaml("nagios", "builtin: choria_status", "last_message: 1s")).watchers[0]
    watcher = NagiosWatcher(spec, Handle(tmp_path), fake_context(tmp_path, nats=conn))
    try:
        await until("the connection", lambda: conn.connected)
        ok = await watcher.check()
        assert ok.transition == "OK", ok.payload["output"]
        assert ok.payload["output"].startswith("OK: connected to 127.0.0.1:")
        assert conn.state.last_success is not None
        await asyncio.to_thread(server.stop)
        await until("the disconnect", lambda: not conn.connected)
        down = await watcher.check()
        assert down.transition == "CRITICAL"
        assert down.payload["output"] == "CRITICAL: Not connected to any server"
        await asyncio.to_thread(server.start)
        await until("the reconnect", lambda: conn.connected)
        again = await watcher.check()
        assert again.transition == "OK", again.payload["output"]
    finally:
        await conn.stop()
        server.close()
