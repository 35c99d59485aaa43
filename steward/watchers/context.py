"""What a watcher is given besides its spec and its machine: the ``WatcherContext``.

Everything a watcher shares with the rest of the daemon comes through here, so no watcher
holds a global or a connection of its own: time and randomness (injected, so tests drive
them), a scratch directory for files commands read, the daemon's NATS connection (or
``NO_NATS``), the Docker engines, the machine's process tracking, and the node's identity and facts.
The daemon builds one context per machine (``NodeServices.watcher_context``); a unit test
builds one from fakes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from steward.broker.link import NatsLink
from steward.clock import Clock
from steward.processes.table import MachineProcesses
from steward.watchers.docker_engines import DockerEngines


class Facts:
    """The node's facts as last read (Choria's facts file): one object the whole daemon
    shares. A reload swaps ``current`` for a new mapping, so every watcher's next run sees the
    new facts; a failed reload keeps the last good ones and sets ``error``."""

    __slots__ = ("current", "error")

    def __init__(self, facts: Mapping[str, Any] | None = None) -> None:
        self.current: Mapping[str, Any] = MappingProxyType(dict(facts or {}))
        self.error: str | None = None  # why the last read failed; None after a good one

    def replace(self, facts: Mapping[str, Any]) -> None:
        self.current = MappingProxyType(dict(facts))
        self.error = None


@dataclass(frozen=True)
class NodeIdentity:
    """Who this node is: its name (the NATS identity) and its facts."""

    name: str
    facts: Facts = field(default_factory=Facts)


@dataclass(frozen=True, slots=True)
class WatcherContext:
    clock: Clock
    rng: random.Random
    scratch_dir: Path  # the daemon's private temp dir (WATCHER_DATA files); never /tmp
    nats: NatsLink  # the daemon's one connection; NO_NATS when none is configured
    docker: DockerEngines  # one Engine per docker_host, shared by every docker watcher
    processes: MachineProcesses  # every command this machine's watchers run goes through it
    node: NodeIdentity
    # the daemon's machines directory (the machines/plugins watchers write managed machines
    # there); None outside a daemon: a watcher then uses its machine's parent directory
    machines_dir: Path | None = None
    # the fleet's specification key from the daemon's config: overrides a watcher's public_key
    signing_key: str | None = None
