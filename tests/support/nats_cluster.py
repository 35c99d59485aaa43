"""A 3-server nats-server cluster with JetStream on loopback, for failover tests and benchmarks.

``NatsCluster`` runs three ``nats-server`` processes (``NatsServer`` with cluster options):
each with ``-js``, its own store dir and server name, ``--cluster_name``, its own route port
and ``--routes`` to the other two, and a monitor port. ``start()`` waits until every server
accepts clients and JetStream has a meta leader that every running server agrees on (its
``/jsz``); ``kill(i)`` SIGKILLs one server, ``restart(i)`` brings it back on the same ports
and store and waits until it is part of the cluster again. ``close()`` kills what is left.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.nats_server import POLL, NatsServer, free_port

SIZE = 3
CLUSTER_NAME = "steward-test"
READY_TIMEOUT = 30.0  # seconds for a meta leader on a busy 2-core box


class NatsCluster:
    def __init__(self, base: Path, size: int = SIZE) -> None:
        self.routes = [free_port() for _ in range(size)]
        self.monitors = [free_port() for _ in range(size)]
        self.names = [f"n{i + 1}" for i in range(size)]
        self.servers: list[NatsServer] = []
        for i in range(size):
            others = ",".join(f"nats://127.0.0.1:{p}" for j, p in enumerate(self.routes) if j != i)
            args = [
                "--server_name", self.names[i],
                "--cluster_name", CLUSTER_NAME,
                "--cluster", f"nats://127.0.0.1:{self.routes[i]}",
                "--routes", others,
                "-m", str(self.monitors[i]),
            ]  # fmt: skip
            self.servers.append(
                NatsServer(base / self.names[i], base / f"{self.names[i]}.log", extra_args=args)
            )

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        for server in self.servers:
            server.start()
        self.wait_ready(timeout)

    def kill(self, i: int) -> None:
        self.servers[i].kill()

    def restart(self, i: int, timeout: float = READY_TIMEOUT) -> None:
        self.servers[i].start()
        self.wait_ready(timeout)

    def close(self) -> None:
        for server in self.servers:
            server.close()

    # what the cluster says about itself ------------------------------------------------------
    def jsz(self, i: int) -> dict[str, Any] | None:
        """Server ``i``'s ``/jsz`` (JetStream state), or None if it does not answer."""
        url = f"http://127.0.0.1:{self.monitors[i]}/jsz"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                doc: dict[str, Any] = json.load(response)
                return doc
        except (OSError, ValueError):
            return None

    def meta_leader(self) -> str | None:
        """The JetStream meta leader every running server names (a running one), or None."""
        running = {self.names[i] for i, s in enumerate(self.servers) if s.running}
        leaders = set()
        for i in range(len(self.servers)):
            if self.names[i] not in running:
                continue
            doc = self.jsz(i)
            leader = ((doc or {}).get("meta_cluster") or {}).get("leader")
            if leader not in running:
                return None
            leaders.add(leader)
        return leaders.pop() if len(leaders) == 1 else None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            leader = self.meta_leader()
            if leader is not None:
                return leader
            if time.monotonic() >= deadline:
                tails = "\n".join(s.log_tail(10) for s in self.servers)
                raise AssertionError(f"no JetStream meta leader within {timeout:g}s\n{tails}")
            time.sleep(POLL)

    def index_of(self, name_or_port: str | int) -> int:
        """The index of a server by its name (``n2``) or its client port."""
        for i, server in enumerate(self.servers):
            if name_or_port in (self.names[i], server.port):
                return i
        raise KeyError(name_or_port)


def running_cluster(base: Path) -> Iterator[NatsCluster]:
    """The body of a fixture: a started cluster, killed at teardown whatever happened."""
    cluster = NatsCluster(base)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
