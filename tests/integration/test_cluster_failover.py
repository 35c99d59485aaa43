"""Failover on a 3-server JetStream cluster (R3) under steady load from real daemons.

Two daemons (subprocesses) with ``nats.replicas: 3``: the events stream and the fleet bucket
are created with three replicas. ``c1`` lists all three servers; ``c2`` lists only ``n1`` and
learns the other two from the cluster (nats-py's discovered servers). Their machines flip ~10
times a second each. ``n1`` (the server ``c2`` is connected to) is SIGKILLed and brought back,
then the events stream's leader is; the machines keep moving throughout. Afterwards every
transition's seq of every machine is in the stream exactly once, in order, none missing, and
each node's heartbeat key is in the fleet bucket (written through the failovers).
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

from steward.fleet.state import DEFAULT_BUCKET, node_key
from tests.support.daemon import MachinesDir, wait_until
from tests.support.events import (
    DEADLINE,
    PREFIX,
    STREAM,
    StewardDaemon,
    check_event,
    describe_gaps,
    make_daemon,
    read_stream,
    short_tmp_dir,
    toggle,
    transitions,
)
from tests.support.nats_cluster import NatsCluster, running_cluster

pytestmark = pytest.mark.e2e

NODES = ("c1", "c2")
MACHINES = ("alpha", "beta")
STEP = 20  # transitions each machine makes between two moves of the test


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    yield from running_cluster(tmp_path / "cluster")


@pytest.fixture
def daemons(tmp_path: Path, cluster: NatsCluster) -> Iterator[dict[str, StewardDaemon]]:
    machines = MachinesDir(tmp_path / "machines")
    for name in MACHINES:
        machines.add(name, toggle(name, "50ms"))
    out: dict[str, StewardDaemon] = {}
    dirs: list[Path] = []
    for node, urls in zip(NODES, (cluster.urls, cluster.urls[:1]), strict=True):
        config = (
            f"nats: {{servers: [{', '.join(urls)}], stream: {STREAM}, replicas: 3,"
            " reconnect_wait: 500ms, reconnect_jitter: 500ms}\n"
            "fleet: {heartbeat: 1s}\n"
        )
        home = tmp_path / node
        home.mkdir()
        state = short_tmp_dir("cf-")
        dirs.append(state)
        d = make_daemon(home, machines.path, state, config=config)
        d.node = node
        out[node] = d
    yield out
    for d in out.values():
        d.cleanup()
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


async def _js_call(url: str, subject: str, payload: bytes = b"") -> dict[str, Any]:
    nc = await nats.connect(url, allow_reconnect=False, name="steward-tests admin")
    try:
        reply = await nc.request(subject, payload, timeout=5)
        doc: dict[str, Any] = json.loads(reply.data)
        return doc
    finally:
        await nc.close()


def stream_info(cluster: NatsCluster, name: str = STREAM) -> dict[str, Any] | None:
    """A stream's info from any running server (None while none answers)."""
    for server in cluster.servers:
        if server.running:
            try:
                info = asyncio.run(_js_call(server.url, f"$JS.API.STREAM.INFO.{name}"))
            except Exception:  # a server still electing a leader: ask the next one
                continue
            if "error" not in info:
                return info
    return None


def bucket_entry(cluster: NatsCluster, key: str) -> dict[str, Any] | None:
    async def get() -> dict[str, Any] | None:
        url = next(s.url for s in cluster.servers if s.running)
        nc = await nats.connect(url, allow_reconnect=False, name="steward-tests reader")
        try:
            kv = await nc.jetstream().key_value(DEFAULT_BUCKET)
            entry = await kv.get(key)
            doc: dict[str, Any] = json.loads(entry.value or b"{}")
            return doc
        finally:
            await nc.close()

    return asyncio.run(get())


def progressed(daemons: dict[str, StewardDaemon], by: int) -> None:
    """Wait until every machine of every daemon made ``by`` more transitions."""
    for d in daemons.values():
        target = {m: d.machine_seq(m) + by for m in MACHINES}
        d.wait_for(
            lambda s, d=d, target=target: all(
                (d.machine(m, s) or {}).get("seq", 0) >= target[m] for m in MACHINES
            ),
            DEADLINE,
            f"{d.node}'s machines to keep transitioning",
        )


def published(d: StewardDaemon) -> int:
    return int(d.status()["events"]["nats"]["published"])


def test_failover_of_the_connected_server_and_the_stream_leader(
    cluster: NatsCluster, daemons: dict[str, StewardDaemon]
) -> None:
    began = time.monotonic()
    for d in daemons.values():
        d.start()
    info = wait_until(lambda: stream_info(cluster), DEADLINE, "the events stream")
    assert info["config"]["num_replicas"] == 3
    assert info["config"]["max_age"] == 7 * 86400 * 10**9  # the documented defaults
    assert info["config"]["duplicate_window"] == 120 * 10**9
    assert info["config"]["max_msgs_per_subject"] == 100_000
    progressed(daemons, STEP)

    lone = daemons[NODES[1]].status()["events"]["nats"]
    assert lone["server"] == f"127.0.0.1:{cluster.servers[0].port}"
    others = {f"127.0.0.1:{s.port}" for s in cluster.servers[1:]}
    assert set(lone["discovered"]) == others, "the cluster's other servers were not discovered"
    victim = 0
    leader = info["cluster"]["leader"]

    back = 0.0
    stalls: list[float] = []  # seconds from a kill until both daemons publish again
    for round_, kill in enumerate((victim, None)):
        if kill is None:  # second round: the events stream's leader, wherever it is now
            now = wait_until(lambda: stream_info(cluster), DEADLINE, "the events stream")
            kill = cluster.index_of(now["cluster"]["leader"])
            leader = now["cluster"]["leader"]
        before = {node: published(d) for node, d in daemons.items()}
        cluster.kill(kill)
        killed = time.monotonic()
        progressed(daemons, STEP)  # the machines never wait for NATS
        for node, d in daemons.items():  # and the events flow again through the others
            d.wait_for(
                lambda s, n=node, b=before: s["events"]["nats"]["published"] > b[n] + STEP,
                DEADLINE,
                f"{node} publishing after server {cluster.names[kill]} died (round {round_})",
            )
        stalls.append(time.monotonic() - killed)
        cluster.restart(kill)
        back = time.time()
        progressed(daemons, STEP // 2)

    last: dict[str, dict[str, int]] = {}
    for node, d in daemons.items():
        last[node] = {m: int(d.transition(m, "halt")["seq"]) for m in MACHINES}
    for d in daemons.values():
        d.wait_for(d.delivered_all, DEADLINE, f"{d.node}: every event delivered")

    url = next(s.url for s in cluster.servers if s.running)
    for node in NODES:
        messages = read_stream(url, subject=f"{PREFIX}.{node}.*.transition")
        events = [check_event(m, node) for m in messages]
        ids = [e.get_id() for e in events]
        assert len(ids) == len(set(ids)), f"{node}: an event is twice in the stream"
        for m in MACHINES:
            seqs = [t["seq"] for t in transitions(events, m)]
            assert seqs == list(range(1, last[node][m] + 1)), f"{node}/{m}: {describe_gaps(seqs)}"

        # the heartbeat is the reporter's, on its own clock: wait for one after the failovers
        def fresh(n: str = node) -> dict[str, Any] | None:
            entry = bucket_entry(cluster, node_key(n))
            return entry if entry is not None and entry["heartbeat"] > back else None

        beat = wait_until(fresh, DEADLINE, f"{node}'s fleet key, written after the failovers")
        assert beat["node"] == node
    bucket = stream_info(cluster, f"KV_{DEFAULT_BUCKET}")
    assert bucket is not None and bucket["config"]["num_replicas"] == 3
    for d in daemons.values():
        assert d.stop() == 0
    print(
        f"\ncluster failover: killed {cluster.names[victim]} (connected) and {leader} (stream"
        f" leader); publishing again after {', '.join(f'{x:.1f}s' for x in stalls)};"
        f" seqs {last}; {time.monotonic() - began:.1f}s"
    )
