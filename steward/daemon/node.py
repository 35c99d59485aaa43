"""The machines running on this node, and what passes between them.

The node routes ``subscribe`` (machine A fired T → machine B tries its transition) and tells
machines whose watchers require a foreign state when that machine moves.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from steward.errors import MachineNotFound, Problem, StoreError
from steward.events.envelope import LifecycleStep
from steward.machine.history import Cause
from steward.machine.runtime import RunningMachine, TransitionResult, start_machines
from steward.machine.services import NodeServices
from steward.machine.spec import MachineSpec

log = logging.getLogger("steward.node")


class NodeListener(Protocol):
    """Told when the machines on the node change (the fleet reporter)."""

    def machine_added(self, machine: RunningMachine) -> None: ...

    def machine_changed(self, machine: RunningMachine) -> None: ...

    def machine_removed(self, name: str) -> None: ...


class Node:
    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.listeners: list[NodeListener] = []
        self.name = services.identity.name
        self.machines: dict[str, RunningMachine] = {}
        # (source machine, transition) -> [(subscriber machine, its transition)]
        self._subscribers: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        # machine -> machines with a watcher that requires one of its states
        self._dependents: dict[str, set[str]] = defaultdict(set)

    def get(self, name: str) -> RunningMachine:
        try:
            return self.machines[name]
        except KeyError:
            raise MachineNotFound(name) from None

    def specs(self) -> list[MachineSpec]:
        return [m.spec for m in self.machines.values()]

    async def add(self, spec: MachineSpec, *, replacing: str | None = None) -> RunningMachine:
        """Start a machine; ``replacing`` is the version it replaces (a reload)."""
        machine = RunningMachine(spec, node=self, services=self.services)
        await machine.start()
        await self._added(machine, replacing)
        return machine

    async def add_all(self, specs: Sequence[MachineSpec]) -> list[RunningMachine]:
        """Start new machines together, as ``add`` does each: one read and one write of the
        store for all of them (``start_machines``), their lifecycle events concurrently (so
        their writes share commits). Raises StoreError: then none of them was added."""
        machines = [RunningMachine(spec, node=self, services=self.services) for spec in specs]
        await start_machines(self.services.store, machines)
        await asyncio.gather(*(self._added(m, None) for m in machines))
        return machines

    async def _added(self, machine: RunningMachine, replacing: str | None) -> None:
        spec = machine.spec
        self.machines[spec.name] = machine
        self._register(spec)
        if replacing is None:
            await machine.announce(LifecycleStep.LOADED, {"path": str(spec.path)})
        else:
            await machine.announce(
                LifecycleStep.RELOADED, {"path": str(spec.path), "previous_version": replacing}
            )
        await machine.announce(LifecycleStep.RESUMED if machine.resumed else LifecycleStep.STARTED)
        self._tell_dependents(spec.name)
        for listener in self.listeners:
            listener.machine_added(machine)

    async def replace(self, spec: MachineSpec) -> RunningMachine:
        """Stop the running version of ``spec.name`` and start ``spec`` in its place."""
        old = self.machines.get(spec.name)
        await self.remove(spec.name, announce=False)
        return await self.add(spec, replacing=old.spec.version if old else None)

    async def remove(self, name: str, *, announce: bool = True) -> None:
        machine = self.machines.pop(name, None)
        if machine is None:
            return
        self._unregister(machine.spec)
        await machine.stop()
        if announce:
            await machine.announce(LifecycleStep.REMOVED)
            for listener in self.listeners:
                listener.machine_removed(name)
        self._tell_dependents(name)

    async def announce_load_failed(
        self, machine: str, version: str | None, problems: list[Problem]
    ) -> None:
        """A machine file that could not be loaded (``machine`` may be the file's name)."""
        events = self.services.events
        event = events.format.lifecycle(
            machine=machine,
            version=version,
            instance=None,
            step=LifecycleStep.LOAD_FAILED,
            at=self.services.clock.time(),
            detail={"problems": [p.as_dict() for p in problems]},
        )
        try:
            await events.emit([event])
        except StoreError as exc:
            log.error("cannot record load_failed event: %s", exc, extra={"error": str(exc)})

    async def stop(self) -> None:
        machines = list(self.machines.values())
        self.machines.clear()
        self._subscribers.clear()
        self._dependents.clear()
        await asyncio.gather(*(m.stop() for m in machines), return_exceptions=True)

    # NodeLink ----------------------------------------------------------------------------------
    def state_of(self, machine: str) -> str | None:
        m = self.machines.get(machine)
        return m.state if m is not None else None

    def transitioned(self, machine: RunningMachine, transition: TransitionResult) -> None:
        for target, own in self._subscribers.get((machine.name, transition.transition), []):
            subscriber = self.machines.get(target)
            if subscriber is not None:
                subscriber.request(own, Cause.subscribed(machine.name, transition.transition))
        self._tell_dependents(machine.name)
        for listener in self.listeners:
            listener.machine_changed(machine)

    def watchers_changed(self, machine: RunningMachine) -> None:
        for listener in self.listeners:
            listener.machine_changed(machine)

    # ----------------------------------------------------------------------------------------
    def _tell_dependents(self, name: str) -> None:
        for other in self._dependents.get(name, ()):
            machine = self.machines.get(other)
            if machine is not None:
                machine.foreign_changed()

    def _register(self, spec: MachineSpec) -> None:
        for t in spec.transitions:
            for sub in t.subscribe:
                entries = self._subscribers[(sub.machine_name, sub.event)]
                if (spec.name, t.name) not in entries:  # one name may have several entries
                    entries.append((spec.name, t.name))
        for w in spec.watchers:
            for fs in w.foreign_state_required:
                self._dependents[fs.machine_name].add(spec.name)

    def _unregister(self, spec: MachineSpec) -> None:
        for t in spec.transitions:
            for sub in t.subscribe:
                key = (sub.machine_name, sub.event)
                entries = [e for e in self._subscribers.get(key, []) if e[0] != spec.name]
                if entries:
                    self._subscribers[key] = entries
                else:
                    self._subscribers.pop(key, None)
        for w in spec.watchers:
            for fs in w.foreign_state_required:
                dependents = self._dependents.get(fs.machine_name)
                if dependents is not None:
                    dependents.discard(spec.name)
                    if not dependents:
                        del self._dependents[fs.machine_name]
