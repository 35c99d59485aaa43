"""The gossip watcher in the real daemon against a real nats-server: messages arrive on the
subject, with the TTL header, at the interval and only while the machine is in a matching
state; NATS going away is an error the watcher recovers from by itself; a registration with
``ttl_seconds`` lands in the service bucket and the server removes it once it stops."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from tests.support.daemon import MachinesDir
from tests.support.events import DEADLINE, NatsCollector, make_daemon, short_tmp_dir
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

GOSSIP = """\
name: gossiper
version: 1.0.0
initial_state: gossiping
transitions:
  - {name: hush, from: [gossiping], destination: quiet}
  - {name: talk, from: [quiet], destination: gossiping}
watchers:
  - name: hello
    type: gossip
    state_match: [gossiping]
    interval: 300ms
    properties: {subject: gossip.hello, payload: hi there, ttl_seconds: 30}
  - name: marker
    type: gossip
    state_match: [quiet]
    interval: 300ms
    properties: {subject: gossip.marker, payload: quiet}
"""

REGISTER = """\
name: web
version: 1.0.0
initial_state: serving
transitions:
  - {name: stop, from: [serving], destination: down}
watchers:
  - name: register
    type: gossip
    state_match: [serving]
    interval: 200ms
    properties:
      ttl_seconds: 1
      registration: {cluster: lon, service: web, protocol: http, ip: 127.0.0.1, port: 8080}
"""


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = short_tmp_dir("sg-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def watcher(status: dict[str, Any], machine: str, name: str) -> dict[str, Any]:
    m = next(m for m in status["machines"] if m["name"] == machine)
    found: dict[str, Any] = next(w for w in m["watchers"] if w["name"] == name)
    return found


def test_gossip_publishes_at_the_interval_only_in_matching_states(
    tmp_path: Path, nats_server: NatsServer, state_dir: Path
) -> None:
    machines = MachinesDir(tmp_path / "machines")
    machines.add_file("gossiper.yaml", GOSSIP)
    collector = NatsCollector(nats_server.url, "gossip.>").start()
    daemon = make_daemon(
        tmp_path, machines.path, state_dir, args=("--nats-server", nats_server.url)
    )
    daemon.start()
    try:
        got = collector.wait_for(lambda r: len(r) >= 5, "five hellos")
        assert {m.subject for m in got} == {"gossip.hello"}
        assert all(m.body == b"hi there" and m.headers["Nats-TTL"] == "30s" for m in got)
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        assert 0.2 <= statistics.median(gaps) <= 0.6, gaps  # interval 300ms

        daemon.transition("gossiper", "hush")
        got = collector.wait_for(
            lambda r: sum(m.subject == "gossip.marker" for m in r) >= 3, "three markers"
        )
        first_marker = next(i for i, m in enumerate(got) if m.subject == "gossip.marker")
        assert all(m.subject == "gossip.marker" for m in got[first_marker:])  # hello stopped

        daemon.transition("gossiper", "talk")
        seen = len(collector.received())
        collector.wait_for(
            lambda r: sum(m.subject == "gossip.hello" for m in r[seen:]) >= 2, "hellos again"
        )

        # NATS goes away: an error (fail_transition); it comes back: gossip resumes by itself
        nats_server.stop()
        status = daemon.wait_for(
            lambda s: watcher(s, "gossiper", "hello")["last_outcome"] == "error",
            DEADLINE,
            "the gossip error",
        )
        assert "NATS" in watcher(status, "gossiper", "hello")["last_detail"]
        nats_server.start()
        seen = len(collector.received())
        collector.wait_for(
            lambda r: sum(m.subject == "gossip.hello" for m in r[seen:]) >= 2,
            "hellos after the outage",
        )
        daemon.wait_for(
            lambda s: watcher(s, "gossiper", "hello")["last_outcome"] == "success",
            DEADLINE,
            "the gossip recovered",
        )
    finally:
        collector.close()
        daemon.stop()


async def _registry(url: str) -> tuple[Any, Any]:
    nc = await nats.connect(url)
    kv = await nc.jetstream().create_key_value(bucket="CHORIA_SERVICES")
    info = await nc.jetstream().stream_info("KV_CHORIA_SERVICES")
    assert info.config.allow_msg_ttl, "the bucket must allow per-message TTLs"
    return nc, kv


async def _entry(kv: Any, key: str) -> bytes | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    value: bytes | None = entry.value
    return value


def test_a_registration_expires_once_its_machine_stops_gossiping(
    tmp_path: Path, nats_server: NatsServer, state_dir: Path
) -> None:
    machines = MachinesDir(tmp_path / "machines")
    machines.add_file("web.yaml", REGISTER)
    loop = asyncio.new_event_loop()
    nc, kv = loop.run_until_complete(_registry(nats_server.url))
    daemon = make_daemon(
        tmp_path, machines.path, state_dir, args=("--nats-server", nats_server.url)
    )
    daemon.start()
    try:
        instance = daemon.machine("web")["instance"]  # type: ignore[index]
        key = f"lon.http.web.{instance}"

        def entry() -> bytes | None:
            return loop.run_until_complete(_entry(kv, key))

        daemon.wait_for(lambda s: entry() is not None, DEADLINE, "the registration")
        value = entry()
        assert value is not None
        assert json.loads(value) == {
            "cluster": "lon",
            "service": "web",
            "protocol": "http",
            "address": "127.0.0.1",
            "port": 8080,
            "priority": 0,
        }
        daemon.transition("web", "stop")
        daemon.wait_for(lambda s: entry() is None, DEADLINE, "the registration to expire")
    finally:
        daemon.stop()
        loop.run_until_complete(nc.close())
        loop.close()
