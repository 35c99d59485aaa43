"""kv: a real daemon (in process) reads a JetStream KV bucket on a real nats-server.

A put, a deletion, an outage of the server (stopped, then started again on the same port and
store), a bucket deleted and re-created, a daemon restart with nothing changed, and the time
from a put to the transition in watch mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js.kv import KeyValue

from steward.broker.settings import NatsSettings
from steward.daemon.config import Config
from steward.daemon.server import Daemon, ExitCode
from steward.machine.runtime import RunningMachine
from steward.watchers.base import Outcome
from steward.watchers.kv import KvWatcher
from tests.support.daemon import until
from tests.support.nats_server import NatsServer

DEADLINE = 20.0
BUCKET = "CONFIG"
DATA_KEY = f"{BUCKET}_colour"


def machine(mode: str = "poll", interval: str = "200ms") -> str:
    return f"""\
name: kvm
version: 1.0.0
initial_state: idle
transitions:
  - {{name: changed, from: [idle, broken], destination: got}}
  - {{name: failed, from: [idle, got], destination: broken}}
  - {{name: rearm, from: [got, broken], destination: idle}}
watchers:
  - name: colour
    type: kv
    interval: {interval}
    success_transition: changed
    fail_transition: failed
    properties: {{bucket: {BUCKET}, key: colour, mode: {mode}}}
"""


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kv-", dir="/tmp"))  # short: the socket path is bound
    (path / "machines").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(base: Path) -> Iterator[NatsServer]:
    server = NatsServer(base / "js", base / "nats.log")
    server.start()
    yield server
    server.close()


@contextlib.asynccontextmanager
async def bucket(server: NatsServer, *, create: bool = True) -> AsyncIterator[KeyValue]:
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        yield await (js.create_key_value(bucket=BUCKET) if create else js.key_value(BUCKET))
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def running(
    base: Path, text: str, server: NatsServer | None
) -> AsyncIterator[RunningMachine]:
    (base / "machines" / "kvm.yaml").write_text(text)
    nats_settings = NatsSettings(servers=(server.url,)) if server else NatsSettings()
    config = Config(
        node="n1",
        machines_dir=base / "machines",
        state_dir=base / "state",
        metrics_listen=None,
        nats=nats_settings,
    )
    daemon = Daemon(config)
    task = asyncio.ensure_future(daemon.serve())
    try:
        await until("the machine", lambda: "kvm" in daemon.node.machines)
        yield daemon.node.get("kvm")
    finally:
        daemon.request_exit()
        async with asyncio.timeout(DEADLINE):
            assert await task is ExitCode.OK


def watcher_of(m: RunningMachine) -> KvWatcher:
    w = m.watchers[0]
    assert isinstance(w, KvWatcher)
    return w


def outcome(m: RunningMachine) -> Outcome | None:
    last = m.watchers[0].last_result
    return last.outcome if last else None


async def test_a_put_and_a_deletion_drive_the_machine(base: Path, server: NatsServer) -> None:
    async with bucket(server) as kv, running(base, machine(), server) as m:
        await until("a first read", lambda: m.watchers[0].runs >= 1)
        assert (m.state, outcome(m)) == ("idle", Outcome.UNCHANGED)  # no key yet: no change
        await kv.put("colour", b'{"name": "green", "rgb": [0, 255, 0]}')
        await until("the transition", lambda: m.state == "got")
        assert m.data[DATA_KEY] == {"name": "green", "rgb": [0, 255, 0]}
        await m.fire("rearm")
        await kv.delete("colour")
        await until("the transition on deletion", lambda: m.state == "got")
        assert DATA_KEY not in m.data
        last = m.watchers[0].last_result
        assert last is not None and last.payload["state"] in ("deleted", "unchanged")


@pytest.mark.parametrize("mode", ["poll", "watch"])
async def test_an_outage_is_an_error_and_the_watcher_recovers_by_itself(
    base: Path, server: NatsServer, mode: str
) -> None:
    text = machine(mode, "200ms" if mode == "poll" else "5m")
    async with bucket(server) as kv:
        await kv.put("colour", b"green")
    async with running(base, text, server) as m:
        await until("the first value", lambda: m.state == "got")
        await asyncio.to_thread(server.stop)
        await until("the error", lambda: m.state == "broken")
        last = m.watchers[0].last_result
        assert last is not None and last.outcome is Outcome.ERROR
        assert "NATS is not connected" in last.detail or "cannot read" in last.detail, last
        assert last.payload["error"] == last.detail
        await asyncio.to_thread(server.start)  # the same port and store
        await until("a clean read", lambda: outcome(m) is Outcome.UNCHANGED)
        if mode == "watch":
            await until("the watch again", lambda: watcher_of(m).watching)
        async with bucket(server, create=False) as kv:
            await kv.put("colour", b"blue")
        await until("the change after the outage", lambda: m.state == "got", 5.0)
        assert m.data[DATA_KEY] == "blue"


async def test_watch_mode_reacts_to_a_put_at_once(base: Path, server: NatsServer) -> None:
    delays = []
    async with bucket(server) as kv, running(base, machine("watch", "5m"), server) as m:
        await until("the watch", lambda: watcher_of(m).watching and m.watchers[0].runs >= 1)
        for i in range(10):
            await until("idle", lambda: m.state == "idle")
            started = time.monotonic()
            await kv.put("colour", f"colour {i}".encode())
            await until("the transition", lambda: m.state == "got", 5.0)
            delays.append(time.monotonic() - started)
            await m.fire("rearm")
    print(
        f"kv watch put -> transition: p50 {statistics.median(delays) * 1000:.1f} ms, "
        f"max {max(delays) * 1000:.1f} ms"
    )
    assert max(delays) < 1.0  # the interval (5 minutes) never came into it


async def test_watch_mode_follows_a_bucket_deleted_and_created_again(
    base: Path, server: NatsServer
) -> None:
    async with bucket(server) as kv, running(base, machine("watch", "5m"), server) as m:
        await kv.put("colour", b"green")
        await until("the first value", lambda: m.state == "got")
        await m.fire("rearm")
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await js.delete_key_value(BUCKET)
            await until("the error", lambda: m.state == "broken")
            last = m.watchers[0].last_result
            assert last is not None and "bucket 'CONFIG' does not exist" in last.detail
            again = await js.create_key_value(bucket=BUCKET)
            await again.put("colour", b"blue")
            await until("the value in the new bucket", lambda: m.state == "got")
            assert m.data[DATA_KEY] == "blue"
            await until("the watch again", lambda: watcher_of(m).watching)
            runs = m.watchers[0].runs
            await until("the read that follows a new watch", lambda: m.watchers[0].runs > runs)
            await m.fire("rearm")
            started = time.monotonic()
            await again.put("colour", b"red")  # followed by the new watch, not the backstop
            await until("the next put", lambda: m.state == "got", 5.0)
            assert time.monotonic() - started < 1.0
        finally:
            await nc.close()


async def test_a_restart_with_an_unchanged_value_fires_nothing(
    base: Path, server: NatsServer
) -> None:
    async with bucket(server) as kv:
        await kv.put("colour", b'{"name": "green"}')
    async with running(base, machine(), server) as m:
        await until("the first value", lambda: m.state == "got")
        await m.fire("rearm")
        seq = m.seq
    # an in-process daemon's reaper kills the test's own children when it stops (it takes them
    # for what its commands left behind): bring the server back, on the same port and store
    if not server.running:
        await asyncio.to_thread(server.start)
    async with running(base, machine(), server) as m:
        assert m.resumed and m.state == "idle"
        await until("a few reads", lambda: m.watchers[0].runs >= 3)
        assert (m.state, m.seq, outcome(m)) == ("idle", seq, Outcome.UNCHANGED)
        assert m.data[DATA_KEY] == {"name": "green"}


async def test_without_nats_the_machine_loads_and_the_watcher_fails_cleanly(base: Path) -> None:
    async with running(base, machine("watch"), None) as m:
        await until("the fail transition", lambda: m.state == "broken")
        last = m.watchers[0].last_result
        assert last is not None and last.outcome is Outcome.ERROR
        assert last.detail.startswith("no NATS is configured")


async def test_watch_mode_follows_a_bucket_replaced_between_two_looks(
    base: Path, server: NatsServer
) -> None:
    async with bucket(server) as kv, running(base, machine("watch", "5m"), server) as m:
        await kv.put("colour", b"green")
        await until("the first value", lambda: m.state == "got")
        await m.fire("rearm")
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await js.delete_key_value(BUCKET)  # and at once a new one: no read saw it missing
            again = await js.create_key_value(bucket=BUCKET)
            await again.put("colour", b"blue")
            await until("the value in the new bucket", lambda: m.state == "got")
            assert m.data[DATA_KEY] == "blue"
        finally:
            await nc.close()
