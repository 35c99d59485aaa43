"""What every machine on a node shares, in one object the daemon builds once.

``NodeServices`` goes from the daemon to the ``Node`` and from the node to each
``RunningMachine``, instead of a list of arguments threaded by hand through each of them.
Each machine asks it for its watchers' context, which carries the machine's own view of the
process table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from steward.broker.link import NatsLink
from steward.clock import Clock
from steward.events.emitter import Emitter
from steward.machine.observer import NO_OBSERVER, MachineObserver
from steward.machine.persistence import MachineStore
from steward.processes.table import ProcessTable
from steward.watchers.context import NodeIdentity, WatcherContext
from steward.watchers.docker_engines import DockerEngines
from steward.watchers.registry import WatcherRegistry


@dataclass(frozen=True)
class NodeServices:
    identity: NodeIdentity
    store: MachineStore
    events: Emitter
    registry: WatcherRegistry
    clock: Clock
    rng: random.Random
    scratch_dir: Path
    nats: NatsLink
    docker: DockerEngines
    processes: ProcessTable
    observer: MachineObserver = NO_OBSERVER  # the daemon's metrics
    machines_dir: Path | None = None  # the daemon's; the machines/plugins watchers write there
    signing_key: str | None = None  # config: the specifications' public key, for every node

    def watcher_context(self, machine: str, instance: str) -> WatcherContext:
        return WatcherContext(
            clock=self.clock,
            rng=self.rng,
            scratch_dir=self.scratch_dir,
            nats=self.nats,
            docker=self.docker,
            processes=self.processes.for_machine(machine, instance),
            node=self.identity,
            machines_dir=self.machines_dir,
            signing_key=self.signing_key,
        )
