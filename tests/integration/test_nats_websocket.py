"""nats-py without aiohttp for nats:// servers, and ws:// servers still work (a real
nats-server with its websocket listener). steward/broker/nats_import.py."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import MachinesDir
from tests.support.events import make_daemon, short_tmp_dir
from tests.support.fresh import run_fresh
from tests.support.nats_server import NatsServer, free_port

pytestmark = pytest.mark.e2e

DOOR = """\
name: door
version: 1.0.0
initial_state: closed
transitions:
  - {name: open, from: [closed], destination: opened}
"""

# in a fresh interpreter: nats-py is first imported for a nats:// server (so without
# aiohttp), then a second connection goes to the ws:// listener and carries a message
SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from steward.broker.connection import NatsConnection
    from steward.broker.settings import NatsSettings

    async def roundtrip(url):
        conn = NatsConnection(NatsSettings(servers=(url,)))
        conn.start()
        try:
            async with asyncio.timeout(15):
                nc = await conn.client()
                sub = await nc.subscribe("ws.test")
                await nc.publish("ws.test", url.encode())
                msg = await sub.next_msg(timeout=5)
            return msg.data.decode()
        finally:
            await conn.stop()

    async def main(tcp, ws):
        print("tcp", await roundtrip(tcp), "aiohttp" in sys.modules)
        print("ws", await roundtrip(ws), "aiohttp" in sys.modules)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.fixture
def websocket_nats(tmp_path: Path) -> Iterator[tuple[NatsServer, str]]:
    ws_port = free_port()
    conf = tmp_path / "ws.conf"
    conf.write_text(f'websocket {{\n  listen: "127.0.0.1:{ws_port}"\n  no_tls: true\n}}\n')
    server = NatsServer(tmp_path / "js", tmp_path / "nats.log", extra_args=["-c", str(conf)])
    try:
        server.start()
        yield server, f"ws://127.0.0.1:{ws_port}"
    finally:
        server.close()


def test_nats_py_loads_without_aiohttp_and_ws_still_connects(
    websocket_nats: tuple[NatsServer, str],
) -> None:
    server, ws_url = websocket_nats
    stdout = run_fresh(SCRIPT, server.url, ws_url)
    assert stdout.splitlines() == [
        f"tcp {server.url} False",  # connected, and aiohttp never loaded
        f"ws {ws_url} True",
    ]


def test_a_daemon_publishes_over_websocket(
    tmp_path: Path, websocket_nats: tuple[NatsServer, str]
) -> None:
    _, ws_url = websocket_nats
    machines = MachinesDir(tmp_path / "machines")
    machines.add("door", DOOR)
    state_dir = short_tmp_dir("ws-")
    daemon = make_daemon(
        tmp_path, machines.path, state_dir, args=["--nats-server", ws_url, "--nats-stream", "WS"]
    )
    try:
        daemon.start()
        daemon.transition("door", "open")
        status = daemon.wait_for(
            lambda s: s["events"]["nats"]["connected"] and s["events"]["nats"]["published"] >= 1,
            what="events published over ws://",
        )
        assert status["events"]["nats"]["servers"] == [ws_url]
    finally:
        daemon.cleanup()
        shutil.rmtree(state_dir, ignore_errors=True)
