"""Shipping a machine to a fleet, end to end, on a real nats-server with JetStream.

Three daemons (web1, web2, db1) run the same manager machine: a kv watcher follows the
specification key in watch mode and a plugins watcher installs what it lists. A spec made
and published with `steward fleet pack|publish` (archive in a JetStream object store) installs
`app` on the two nodes its `match` selects; an updated spec replaces it; a spec without it
purges it; a spec signed with another key changes nothing and is reported.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from steward.broker.settings import NatsSettings
from steward.daemon.config import Config
from steward.daemon.server import Daemon, ExitCode
from steward.events.envelope import EventKind
from steward.events.formats import parse_event
from tests.support.conformance import CORPUS
from tests.support.daemon import until
from tests.support.nats_server import NatsServer

DEADLINE = 20.0
NODES = ("web1", "web2", "db1")

MANAGER = """\
name: manager
version: 1.0.0
initial_state: MANAGE
transitions:
  - {{name: enter_maintenance, from: [MANAGE], destination: MAINTENANCE}}
watchers:
  - name: specification
    type: kv
    state_match: [MANAGE]
    properties: {{bucket: MACHINES, key: spec, mode: watch, bucket_prefix: false}}
  - name: manage_machines
    type: plugins
    state_match: [MANAGE]
    properties:
      data_item: spec
      public_key: {public}
      purge_unknown: true
      plugin_manage_interval: 1m
      manager_machine_prefix: mm
"""

APP = """\
name: app
version: {version}
initial_state: running
transitions:
  - {{name: stop, from: [running], destination: stopped}}
"""


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fl-", dir="/tmp"))  # short: sockets are bound there
    yield path
    shutil.rmtree(path, ignore_errors=True)


def steward(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "steward", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def pack(base: Path, keys: Path, version: str | None, name: str) -> Path:
    """A signed spec listing `app` (when version is given) for nodes named web*."""
    ship = base / f"ship-{name}"
    ship.mkdir()
    if version is not None:
        (ship / "app").mkdir()
        (ship / "app" / "machine.yaml").write_text(APP.format(version=version))
    else:  # nothing to ship: the spec lists another machine no node matches
        (ship / "other").mkdir()
        (ship / "other" / "machine.yaml").write_text(
            APP.format(version="1.0.0").replace("name: app", "name: other")
        )
    spec = base / f"{name}.json"
    match = (
        ["--match", 'app=identity("^web")']
        if version is not None
        else ["--match", 'other=identity("^nowhere$")']
    )
    steward(
        "fleet",
        "pack",
        str(ship),
        "--key",
        str(keys / "fleet.seed"),
        "--source-url",
        "nats-object://ARCHIVES/",
        *match,
        "-o",
        str(spec),
    )
    return spec


def publish(server: NatsServer, spec: Path) -> float:
    steward(
        "fleet",
        "publish",
        str(spec),
        "--nats",
        server.url,
        "--bucket",
        "MACHINES",
        "--key",
        "spec",
        "--object-store",
        "ARCHIVES",
        "--archives",
        str(spec.parent),  # pack writes the tarballs beside the spec
    )
    return time.monotonic()


def reported_forged(d: Daemon) -> bool:
    """The manager's watcher event says the spec's signature did not verify."""
    for env in d.events.local.recent(machine="manager", kind=EventKind.WATCHER):
        data = parse_event(env.body).get_data()
        if isinstance(data, dict) and "signature does not verify" in str(data.get("detail")):
            return True
    return False


async def fleet_stores(url: str) -> None:
    """The bucket and the object store a fleet's operator creates once."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.create_key_value(bucket="MACHINES")
        await js.create_object_store("ARCHIVES")
    finally:
        await nc.close()


def app_version(d: Daemon) -> str | None:
    m = d.node.machines.get("app")
    return m.spec.version if m is not None else None


async def test_a_published_spec_installs_replaces_and_purges_on_matching_nodes(
    base: Path,
) -> None:
    server = NatsServer(base / "js", base / "nats.log")
    server.start()
    await fleet_stores(server.url)
    steward("fleet", "keygen", str(base / "keys"))
    steward("fleet", "keygen", str(base / "wrong"))
    public = (base / "keys" / "fleet.public").read_text().strip()
    daemons: dict[str, Daemon] = {}
    for node in NODES:
        machines = base / node / "machines"
        (machines / "manager").mkdir(parents=True)
        (machines / "manager" / "machine.yaml").write_text(MANAGER.format(public=public))
        daemons[node] = Daemon(
            Config(
                node=node,
                machines_dir=machines,
                state_dir=base / node / "state",
                metrics_listen=None,
                nats=NatsSettings(servers=(server.url,)),
            )
        )
    tasks = [asyncio.ensure_future(d.serve()) for d in daemons.values()]
    web, db = [daemons["web1"], daemons["web2"]], daemons["db1"]
    try:
        await until(
            "the managers", lambda: all("manager" in d.node.machines for d in daemons.values())
        )

        published = publish(server, pack(base, base / "keys", "1.0.0", "v1"))
        await until(
            "app 1.0.0 on web1 and web2", lambda: all(app_version(d) == "1.0.0" for d in web)
        )
        done = time.monotonic()
        print(f"\nspec put -> app running on both web nodes: {done - published:.3f}s")
        assert done - published < 2.0
        assert app_version(db) is None and "mm_app" not in db.node.machines

        publish(server, pack(base, base / "keys", "1.1.0", "v2"))
        await until("app 1.1.0", lambda: all(app_version(d) == "1.1.0" for d in web))

        before = {n: sorted(d.node.machines) for n, d in daemons.items()}
        publish(server, pack(base, base / "wrong", "9.9.9", "forged"))
        await until("the forged spec reported", lambda: all(reported_forged(d) for d in web))
        assert {n: sorted(d.node.machines) for n, d in daemons.items()} == before
        assert all(app_version(d) == "1.1.0" for d in web)

        publish(server, pack(base, base / "keys", None, "v3"))
        await until("app purged", lambda: all(app_version(d) is None for d in web))
        await until("mm_app purged", lambda: all("mm_app" not in d.node.machines for d in web))
        assert not (base / "web1" / "machines" / "app").exists()
    finally:
        for d in daemons.values():
            d.request_exit()
        async with asyncio.timeout(DEADLINE):
            codes = await asyncio.gather(*tasks, return_exceptions=True)
        server.close()
    assert all(code is ExitCode.OK for code in codes), codes


async def test_chorias_own_machine_manager_runs_a_published_spec(base: Path) -> None:
    """go-choria's machine-manager.yaml, unchanged (poll mode, the older `machines` format)."""
    server = NatsServer(base / "js", base / "nats.log")
    server.start()
    await fleet_stores(server.url)
    steward("fleet", "keygen", str(base / "keys"))
    ship = base / "ship-m"
    (ship / "app").mkdir(parents=True)
    (ship / "app" / "machine.yaml").write_text(APP.format(version="3.0.0"))
    spec = base / "m.json"
    steward(
        *("fleet", "pack", str(ship), "--key", str(base / "keys" / "fleet.seed")),
        *("--format", "machines", "--source-url", "nats-object://ARCHIVES/", "-o", str(spec)),
    )
    publish(server, spec)  # before the node starts: the manager polls it at once
    machines = base / "node" / "machines"
    (machines / "manager").mkdir(parents=True)
    shutil.copy(CORPUS / "machine-manager.yaml", machines / "manager" / "machine.yaml")
    daemon = Daemon(
        Config(
            node="node1",
            machines_dir=machines,
            state_dir=base / "node" / "state",
            metrics_listen=None,
            nats=NatsSettings(servers=(server.url,)),
        )
    )
    task = asyncio.ensure_future(daemon.serve())
    try:
        await until("app 3.0.0", lambda: app_version(daemon) == "3.0.0")
        assert daemon.node.get("machine_manager").state == "MANAGE"
    finally:
        daemon.request_exit()
        async with asyncio.timeout(DEADLINE):
            code = await task
        server.close()
    assert code is ExitCode.OK
