"""The machines running on this node, and what passes between them.

The node routes ``subscribe`` (machine A fired T → machine B tries its transition) and tells
machines whose watchers require a foreign state when that machine moves.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict

from steward.clock import Clock
from steward.errors import MachineNotFound
from steward.machine.persistence import MachineStore
from steward.machine.runtime import RunningMachine, TransitionResult
from steward.machine.spec import MachineSpec
from steward.watchers.registry import WatcherRegistry

log = logging.getLogger("steward.node")


class Node:
    def __init__(
        self,
        name: str,
        *,
        store: MachineStore,
        registry: WatcherRegistry,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.name = name
        self._store = store
        self._registry = registry
        self._clock = clock
        self._rng = rng
        self.machines: dict[str, RunningMachine] = {}
        # (source machine, transition) -> [(subscriber machine, its transition)]
        self._subscribers: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def get(self, name: str) -> RunningMachine:
        try:
            return self.machines[name]
        except KeyError:
            raise MachineNotFound(name) from None

    def specs(self) -> list[MachineSpec]:
        return [m.spec for m in self.machines.values()]

    async def add(self, spec: MachineSpec) -> RunningMachine:
        machine = RunningMachine(
            spec,
            store=self._store,
            node=self,
            registry=self._registry,
            clock=self._clock,
            rng=self._rng,
        )
        await machine.start()
        self.machines[spec.name] = machine
        self._index()
        self._tell_dependents(spec.name)
        return machine

    async def remove(self, name: str) -> None:
        machine = self.machines.pop(name, None)
        if machine is None:
            return
        self._index()
        await machine.stop()
        self._tell_dependents(name)

    async def stop(self) -> None:
        machines = list(self.machines.values())
        self.machines.clear()
        self._subscribers.clear()
        await asyncio.gather(*(m.stop() for m in machines), return_exceptions=True)

    # NodeLink ----------------------------------------------------------------------------------
    def state_of(self, machine: str) -> str | None:
        m = self.machines.get(machine)
        return m.state if m is not None else None

    def transitioned(self, machine: RunningMachine, transition: TransitionResult) -> None:
        for target, own in self._subscribers.get((machine.name, transition.transition), []):
            subscriber = self.machines.get(target)
            if subscriber is not None:
                subscriber.request(own, f"subscribe {machine.name}.{transition.transition}")
        self._tell_dependents(machine.name)

    # ----------------------------------------------------------------------------------------
    def _tell_dependents(self, name: str) -> None:
        for other in self.machines.values():
            if other.name != name and other.depends_on(name):
                other.foreign_changed()

    def _index(self) -> None:
        index: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for m in self.machines.values():
            for t in m.spec.transitions:
                for sub in t.subscribe:
                    index[(sub.machine_name, sub.event)].append((m.name, t.name))
        self._subscribers = dict(index)
