"""The validated, immutable description of a machine: what ``machine.yaml`` says.

Built only by ``steward.machine.validate``; everything downstream (runtime, graph, API) reads
these and never the YAML. A node may hold 10,000 of them: the parts are slotted, and machines
made from the same template share their equal transitions and watchers (``validate`` builds
those through a cache).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steward.errors import Problem
from steward.machine.source import Position


@dataclass(frozen=True, slots=True)
class Subscription:
    """``subscribe`` entry: fire this transition when ``machine_name`` fires ``event``."""

    machine_name: str
    event: str
    pos: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class ForeignState:
    """``foreign_state_required`` entry: the watcher is active only while that machine is there."""

    machine_name: str
    state: str
    pos: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class TransitionSpec:
    name: str
    sources: tuple[str, ...]
    destination: str
    description: str = ""
    subscribe: tuple[Subscription, ...] = ()


@dataclass(frozen=True, slots=True)
class WatcherSpec:
    name: str
    type: str
    properties: Any  # the watcher type's own validated Properties object
    state_match: tuple[str, ...] = ()
    foreign_state_required: tuple[ForeignState, ...] = ()
    success_transition: str | None = None
    fail_transition: str | None = None
    interval: float | None = None  # seconds; None = run only when the watcher becomes active
    announce_interval: float | None = None

    def matches(self, state: str) -> bool:
        return not self.state_match or state in self.state_match


@dataclass(frozen=True)
class MachineSpec:
    name: str
    version: str
    initial_state: str
    transitions: tuple[TransitionSpec, ...]
    watchers: tuple[WatcherSpec, ...]
    path: Path  # the machine.yaml (or bare <name>.yaml)
    directory: Path  # where its scripts live; commands run here
    checksum: str  # sha256 of the file's bytes
    splay_start: float = 0.0
    description: str = ""
    resume: bool = True
    name_pos: Position | None = field(default=None, compare=False)
    # what the validator found questionable but valid (shown by validate, logged on load)
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    @functools.cached_property
    def states(self) -> tuple[str, ...]:
        """initial_state, every from and every destination, in first-seen order."""
        seen: dict[str, None] = {self.initial_state: None}
        for t in self.transitions:
            for s in (*t.sources, t.destination):
                seen.setdefault(s, None)
        return tuple(seen)

    def transition(self, name: str) -> TransitionSpec | None:
        for t in self.transitions:
            if t.name == name:
                return t
        return None

    def watcher(self, name: str) -> WatcherSpec | None:
        for w in self.watchers:
            if w.name == name:
                return w
        return None
