"""The fleet bucket with real daemons on a real nats-server: three nodes' machines in the table
with their states, a transition visible within a second, a kill -9 seen as offline with its
last seen, and a node cut off from NATS that converges when it returns without ever putting an
older value over a newer one.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from steward.fleet.feed import FleetFeed, open_bucket
from steward.fleet.state import DEFAULT_BUCKET, OFFLINE_GRACE, machine_key
from tests.support.daemon import run_cli, wait_until
from tests.support.fleet import HEARTBEAT, Fleet
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

NODES = ("web1.example.com", "web2", "db1")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
def fleet(tmp_path: Path, server: NatsServer) -> Iterator[Fleet]:
    f = Fleet(tmp_path, server, NODES)
    yield f
    f.cleanup()


def _converged(fleet: Fleet, expected: dict[tuple[str, str], str]) -> bool:
    rows = fleet.rows()
    return all(rows.get(k, {}).get("state") == v for k, v in expected.items())


def test_three_nodes_in_the_table_and_a_transition_within_a_second(fleet: Fleet) -> None:
    for d in fleet.daemons.values():
        d.start()
    expected = {(n, m): s for n in NODES for m, s in (("switch", "down"), ("probe", "passing"))}
    wait_until(lambda: _converged(fleet, expected), 15, "every machine in the fleet table")
    rows = fleet.rows()
    assert all(rows[(n, "switch")]["online"] for n in NODES)
    probe = rows[("db1", "probe")]
    assert (probe["version"], probe["last_transition"], probe["cause"]) == (
        "2.0.0",
        "passed",
        "watcher check",
    )
    assert set(fleet.rows("--node", "web*")) == {
        (n, m) for n in ("web1.example.com", "web2") for m in ("switch", "probe")
    }
    assert set(fleet.rows("--state", "down")) == {(n, "switch") for n in NODES}

    async def transition_seen() -> float:
        nc = await nats.connect(fleet.server.url)
        feed = FleetFeed(await open_bucket(nc.jetstream(), DEFAULT_BUCKET), nc.jetstream())
        try:
            view = await feed.load()
            fired = time.monotonic()
            await asyncio.to_thread(fleet.daemons["web2"].transition, "switch", "turn_up")
            async with asyncio.timeout(5):
                async for node, machine in feed.changes():
                    doc = view.machines.get(("web2", "switch"), {})
                    if (node, machine) == ("web2", "switch") and doc.get("state") == "up":
                        last = doc["last"]
                        assert last["cause"]["kind"] == "manual"
                        return time.monotonic() - fired
        finally:
            await feed.close()
            await nc.close()
        raise AssertionError("unreachable")

    # measured from before the CLI call that fires it (a subprocess: ~0.3 s of it)
    assert asyncio.run(transition_seen()) < 1.0

    # a clean stop says so at once
    fleet.daemons["db1"].stop()
    wait_until(lambda: fleet.rows()[("db1", "switch")]["stopped"], 5, "db1 stopped")
    assert not fleet.rows()[("db1", "switch")]["online"]


def test_a_killed_daemon_shows_offline_with_its_last_seen(fleet: Fleet) -> None:
    daemon = fleet.daemons["web2"]
    daemon.start()
    wait_until(lambda: fleet.rows().get(("web2", "switch"), {}).get("online"), 15, "online")
    daemon.kill9()
    killed = time.time()
    deadline = 2 * HEARTBEAT + OFFLINE_GRACE
    rows = fleet.rows()
    assert rows[("web2", "switch")]["online"], rows  # silence is not offline yet

    def offline() -> dict[str, Any] | None:
        row = fleet.rows()[("web2", "switch")]
        return None if row["online"] else row

    row = wait_until(offline, deadline + 10, "web2 offline")
    # judged from the last heartbeat the server stored, which came before the kill
    assert time.time() >= row["last_seen"] + deadline
    assert killed - 5.0 <= row["last_seen"] <= killed + 0.5, (killed, row)
    assert row["stopped"] is None
    text = run_cli("fleet", "status", "--nats", fleet.server.url, "--stale", env=fleet.env)
    assert "web2" in text.stdout and "OFFLINE (seen" in text.stdout, text.stdout


def test_a_node_cut_off_converges_and_never_goes_back(fleet: Fleet) -> None:
    """The bucket is created with history here, so every value written is kept to check."""

    async def create_bucket() -> None:
        nc = await nats.connect(fleet.server.url)
        try:
            await nc.jetstream().create_key_value(bucket=DEFAULT_BUCKET, history=64)
        finally:
            await nc.close()

    asyncio.run(create_bucket())
    daemon = fleet.daemons["web1.example.com"]
    daemon.start()
    key = ("web1.example.com", "switch")
    wait_until(lambda: fleet.rows().get(key, {}).get("state") == "down", 15, "down")
    fleet.server.stop()
    for name in ("turn_up", "turn_down", "turn_up", "turn_down", "turn_up"):
        daemon.transition("switch", name)
    seq = daemon.machine("switch")["seq"]  # type: ignore[index]
    assert seq == 5
    fleet.server.start()
    wait_until(lambda: fleet.rows().get(key, {}).get("seq") == seq, 20, "the latest value")
    assert fleet.rows()[key]["state"] == "up"

    async def written_seqs() -> list[int]:
        nc = await nats.connect(fleet.server.url)
        try:
            kv = await nc.jetstream().key_value(DEFAULT_BUCKET)
            entries = await kv.history(machine_key(*key))
            return [json.loads(e.value)["seq"] for e in entries if e.value]
        finally:
            await nc.close()

    seqs = asyncio.run(written_seqs())
    assert seqs == sorted(seqs) and seqs[-1] == 5, seqs
    assert len(seqs) <= 3, f"intermediate values were written after the outage: {seqs}"

    # a newer value from elsewhere (another daemon under this node name) is not overwritten
    async def put_newer() -> None:
        nc = await nats.connect(fleet.server.url)
        try:
            kv = await nc.jetstream().key_value(DEFAULT_BUCKET)
            entry = await kv.get(machine_key(*key))
            doc = json.loads(entry.value or b"")
            doc.update(seq=99, since=time.time() + 3600, state="elsewhere")
            await kv.put(machine_key(*key), json.dumps(doc).encode())
        finally:
            await nc.close()

    asyncio.run(put_newer())
    daemon.transition("switch", "turn_down")
    wait_until(lambda: daemon.status()["fleet"]["skipped_newer"] >= 1, 10, "the newer value kept")
    assert fleet.rows()[key]["state"] == "elsewhere"


def test_fleet_watch_redraws_on_a_transition(fleet: Fleet) -> None:
    import subprocess
    import sys
    import threading

    daemon = fleet.daemons["web2"]
    daemon.start()
    wait_until(lambda: fleet.rows().get(("web2", "switch"), {}).get("online"), 15, "online")
    watch = subprocess.Popen(
        [sys.executable, "-m", "steward", "fleet", "watch", "--nats", fleet.server.url],
        env=fleet.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    screens: list[str] = []
    reader = threading.Thread(
        target=lambda: screens.extend(watch.stdout or []), daemon=True, name="watch-reader"
    )
    reader.start()
    try:

        def shows(state: str) -> bool:
            text = "".join(screens).rsplit("\x1b[2J", 1)[-1]  # the last screen drawn
            return any(
                line.split()[:1] == ["web2"] and "switch" in line and f" {state} " in line
                for line in text.splitlines()
            )

        wait_until(lambda: shows("down"), 10, "the first screen")
        daemon.transition("switch", "turn_up")
        wait_until(lambda: shows("up"), 5, "the screen redrawn with the new state")
    finally:
        watch.terminate()
        watch.wait(10)
        reader.join(10)
        if watch.stdout is not None:
            watch.stdout.close()


def test_a_removed_machine_leaves_the_bucket_and_purge_removes_a_node(
    tmp_path: Path, server: NatsServer
) -> None:
    """In Choria's event format too: the fleet bucket is steward's own either way."""
    fleet = Fleet(tmp_path, server, ["edge.lan"], extra_config="events: {format: choria}\n")
    daemon = fleet.daemons["edge.lan"]
    rows = fleet.rows
    try:
        daemon.start()
        wait_until(lambda: ("edge.lan", "probe") in rows(), 15, "probe in the bucket")
        shutil.rmtree(fleet.probe_dir)
        wait_until(lambda: ("edge.lan", "probe") not in rows(), 15, "probe removed")
        assert ("edge.lan", "switch") in rows()
        daemon.stop()
        result = run_cli("fleet", "purge", "edge.lan", "--nats", server.url, env=fleet.env)
        assert result.returncode == 0, result.stderr
        assert "purged 3 keys of node edge.lan" in result.stdout  # node, switch, its graph
        assert rows() == {}
    finally:
        fleet.cleanup()
