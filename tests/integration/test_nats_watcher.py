"""A watcher that needs NATS is one module and one registry line: it reaches the daemon's own
connection through its context, waits while NATS is down, and fails cleanly without NATS.

``KvValue`` below is such a watcher, written the way a new type would be (a Properties
structure, a check); the test registers it next to the shipped types and runs it in a real
daemon against a real nats-server that starts only after the daemon did.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import nats
import pytest

from steward.broker.settings import NatsSettings
from steward.daemon.config import Config
from steward.daemon.server import Daemon, ExitCode
from steward.errors import NatsUnavailable
from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.registry import WatcherRegistry, default_registry
from tests.support.daemon import until
from tests.support.nats_server import NatsServer

DEADLINE = 20.0
BUCKET = "steward_test"


@dataclass(frozen=True)
class KvValueProperties:
    bucket: str
    key: str

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        props = cls(
            bucket=fields.string("bucket", required=True) or "",
            key=fields.string("key", required=True) or "",
        )
        fields.finish(" in kv_value properties")
        return props


class KvValue(Watcher):
    """Success with the key's value as machine data; an error without NATS."""

    TYPE = "kv_value"
    Properties = KvValueProperties
    clients: list[Any] = []  # noqa: RUF012 - the test reads which client each check used

    async def check(self) -> WatcherResult:
        props = self.spec.properties
        assert isinstance(props, KvValueProperties)
        try:
            client = await self.context.nats.client()  # waits while the connection is down
        except NatsUnavailable as exc:
            return WatcherResult(Outcome.ERROR, str(exc))
        KvValue.clients.append(client)
        kv = await client.jetstream().key_value(props.bucket)
        entry = await kv.get(props.key)
        value = (entry.value or b"").decode()
        return WatcherResult(Outcome.SUCCESS, f"{props.key}={value}", data={props.key: value})


MACHINE = f"""\
name: reader
version: 1.0.0
initial_state: waiting
transitions:
  - {{name: got, from: [waiting], destination: done}}
  - {{name: failed, from: [waiting], destination: broken}}
watchers:
  - name: value
    type: kv_value
    state_match: [waiting]
    success_transition: got
    fail_transition: failed
    properties: {{bucket: {BUCKET}, key: colour}}
"""


@pytest.fixture
def dirs() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="nw-", dir="/tmp"))  # short: the socket path is bound
    (base / "machines").mkdir()
    (base / "machines" / "reader.yaml").write_text(MACHINE)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def registry() -> WatcherRegistry:
    types = [default_registry().get(name) for name in default_registry().names()]
    return WatcherRegistry([*(t for t in types if t is not None), KvValue])  # the one line


async def put(url: str, key: str, value: bytes) -> None:
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().create_key_value(bucket=BUCKET)
        await kv.put(key, value)
    finally:
        await nc.close()


async def test_a_nats_watcher_waits_for_the_daemons_connection(dirs: Path) -> None:
    server = NatsServer(dirs / "js", dirs / "nats.log")  # a free port; not started yet
    config = Config(
        node="n1",
        machines_dir=dirs / "machines",
        state_dir=dirs / "state",
        metrics_listen=None,
        nats=NatsSettings(servers=(server.url,), stream="STEWARD_EVENTS"),
    )
    daemon = Daemon(config, registry=registry())
    KvValue.clients.clear()
    task = asyncio.ensure_future(daemon.serve())
    try:
        await until("the machine", lambda: "reader" in daemon.node.machines)
        machine = daemon.node.get("reader")
        await asyncio.sleep(0.5)
        assert machine.state == "waiting"  # the check waits for NATS; nothing failed
        assert machine.watchers[0].runs == 0
        await asyncio.to_thread(server.start)
        await put(server.url, "colour", b"green")
        await until("the transition", lambda: machine.state == "done")
        assert machine.data["colour"] == "green"
        # the daemon's one connection: the watcher used the client the publisher uses
        assert KvValue.clients == [await daemon.nats.client()]
        await until("the events", lambda: daemon.publisher.published >= 3)
    finally:
        daemon.request_exit()
        assert await asyncio.wait_for(task, DEADLINE) is ExitCode.OK
        server.close()


async def test_without_nats_a_nats_watcher_fails_cleanly(dirs: Path) -> None:
    config = Config(
        node="n1", machines_dir=dirs / "machines", state_dir=dirs / "state", metrics_listen=None
    )
    daemon = Daemon(config, registry=registry())
    task = asyncio.ensure_future(daemon.serve())
    try:
        await until("the machine", lambda: "reader" in daemon.node.machines)
        machine = daemon.node.get("reader")
        await until("the fail transition", lambda: machine.state == "broken")
        last = machine.watchers[0].last_result
        assert last is not None and last.outcome is Outcome.ERROR
        assert "no NATS is configured" in last.detail
    finally:
        daemon.request_exit()
        assert await asyncio.wait_for(task, DEADLINE) is ExitCode.OK
