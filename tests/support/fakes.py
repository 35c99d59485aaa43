"""Small fakes that implement steward's own interfaces (Clock, MachineStore, NodeLink), and
the watcher context and node services built from them."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from steward.broker.link import NatsLink, NoNats
from steward.clock import Clock, SystemClock
from steward.events.emitter import Emitter, LocalOnly, OutboxSink
from steward.events.envelope import Envelope
from steward.events.formats import StewardFormat
from steward.events.local import LocalEvents
from steward.machine.history import HistoryEntry
from steward.machine.observer import NO_OBSERVER, MachineObserver
from steward.machine.persistence import LateWrite, SavedMachine, TransitionRecord
from steward.machine.services import NodeServices
from steward.machine.source import Fields
from steward.machine.spec import MachineSpec
from steward.processes import ProcessTable
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.context import Facts, NodeIdentity, WatcherContext
from steward.watchers.docker_engines import DockerEngines
from steward.watchers.registry import WatcherRegistry

EPOCH = 1_700_000_000.0


async def settle(rounds: int = 50) -> None:
    """Let every ready task run until nothing is left to do."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._ids = itertools.count()

    def time(self) -> float:
        return EPOCH + self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            timer.cancel()

    def call_later(self, seconds: float, callback: Callable[[], object]) -> _FakeTimer:
        timer = _FakeTimer(callback)
        heapq.heappush(self._timers, (self.now + seconds, next(self._ids), timer))
        return timer

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, t in self._timers if not t.done)

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        await settle()
        while self._timers and self._timers[0][0] <= target:
            deadline, _, timer = heapq.heappop(self._timers)
            self.now = max(self.now, deadline)
            timer.fire()
            await settle()
        self.now = target
        await settle()


class _FakeTimer:
    def __init__(self, callback: Callable[[], object]) -> None:
        self._callback = callback
        self.done = False

    def cancel(self) -> None:
        self.done = True

    def fire(self) -> None:
        if not self.done:
            self.done = True
            self._callback()


class FakeStore:
    """An in-memory MachineStore."""

    def __init__(self) -> None:
        self.rows: dict[str, SavedMachine] = {}
        self.records: list[TransitionRecord] = []
        self.outbox: list[Envelope] = []
        self.fail_with: Exception | None = None

    async def load(self, name: str) -> SavedMachine | None:
        return self.rows.get(name)

    async def load_many(self, names: Sequence[str]) -> dict[str, SavedMachine]:
        return {name: self.rows[name] for name in names if name in self.rows}

    async def save(self, saved: SavedMachine) -> None:
        await self.save_many([saved])

    async def save_many(self, saved: Sequence[SavedMachine]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        for row in saved:
            old = self.rows.get(row.name)
            if old is None or old.seq <= row.seq:  # the sequence never goes back
                self.rows[row.name] = row

    async def record_transition(
        self, record: TransitionRecord, events: Sequence[Envelope] = ()
    ) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.records.append(record)
        self.outbox.extend(events)
        old = self.rows[record.machine]
        self.rows[record.machine] = SavedMachine(
            old.name, record.version, record.to_state, record.at, record.seq, old.data
        )

    async def record_late(self, writes: Sequence[LateWrite]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        for w in writes:
            if w.record is None:
                self.outbox.extend(w.events)
            elif self.rows[w.record.machine].seq < w.record.seq:
                await self.record_transition(w.record, w.events)

    async def append_events(self, events: Sequence[Envelope]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.outbox.extend(events)

    async def history(self, name: str, limit: int) -> list[HistoryEntry]:
        return [r.entry() for r in self.records if r.machine == name][-limit:]

    async def history_many(self, names: Sequence[str], limit: int) -> dict[str, list[HistoryEntry]]:
        found = {name: await self.history(name, limit) for name in names}
        return {name: entries for name, entries in found.items() if entries}

    async def save_data(self, name: str, data: dict[str, Any], at: float) -> None:
        old = self.rows[name]
        self.rows[name] = SavedMachine(
            old.name, old.version, old.state, old.since, old.seq, dict(data)
        )


@dataclass
class FakeNode:
    """A NodeLink: foreign states set by the test; transitions recorded."""

    states: dict[str, str] = field(default_factory=dict)
    transitions: list[Any] = field(default_factory=list)
    watcher_changes: int = 0

    def state_of(self, machine: str) -> str | None:
        return self.states.get(machine)

    def transitioned(self, machine: Any, transition: Any) -> None:
        self.transitions.append(transition)

    def watchers_changed(self, machine: Any) -> None:
        self.watcher_changes += 1


@dataclass(frozen=True)
class ScriptedProperties:
    """No properties: a scripted watcher's outcomes come from the test."""

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        fields.finish()
        return cls()


class ScriptedWatcher(Watcher):
    """Each check waits for the test to hand it a result through ``feed``."""

    TYPE = "scripted"
    Properties = ScriptedProperties

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.results: asyncio.Queue[WatcherResult] = asyncio.Queue()
        self.started = 0
        self.cancelled = 0

    def feed(self, outcome: Outcome, data: dict[str, Any] | None = None) -> None:
        self.results.put_nowait(WatcherResult(outcome, outcome.value, data=data))

    async def check(self) -> WatcherResult:
        self.started += 1
        try:
            return await self.results.get()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def spec_with(spec: MachineSpec, **changes: Any) -> MachineSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def emitter(node: str = "n1", *, outbox: Any = None) -> Emitter:
    """An Emitter in the steward format: storing into ``outbox`` (a FakeStore, say) as a
    daemon with NATS does, or, with no outbox, delivering locally only."""
    sink = OutboxSink(outbox) if outbox is not None else LocalOnly()
    return Emitter(StewardFormat(node), sink, LocalEvents())


def fake_context(
    scratch_dir: Path | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    nats: NatsLink | None = None,
    docker: DockerEngines | None = None,
    processes: ProcessTable | None = None,
    machine: str = "m1",
    node: str = "n1",
    facts: Facts | None = None,
) -> WatcherContext:
    """A watcher context for one watcher outside any daemon: the real clock and process
    table unless the test gives its own, no NATS, a private scratch dir, no facts unless
    given (a ``Facts`` the test may ``replace``)."""
    return WatcherContext(
        clock=clock or SystemClock(),
        rng=rng or random.Random(0),
        scratch_dir=scratch_dir or Path(tempfile.mkdtemp(prefix="steward-scratch-")),
        nats=nats or NoNats(),
        docker=docker or DockerEngines(),
        processes=(processes or ProcessTable()).for_machine(machine, "instance-1"),
        node=NodeIdentity(node, facts if facts is not None else Facts()),
    )


def node_services(
    *,
    store: Any = None,
    registry: WatcherRegistry | None = None,
    clock: Clock | None = None,
    events: Emitter | None = None,
    observer: MachineObserver = NO_OBSERVER,
    scratch_dir: Path | None = None,
    rng: random.Random | None = None,
    node: str = "n1",
) -> NodeServices:
    """NodeServices from fakes: a FakeStore whose outbox the events go to, a fake clock,
    the scripted watcher type."""
    store = store if store is not None else FakeStore()
    return NodeServices(
        identity=NodeIdentity(node),
        store=store,
        events=events if events is not None else emitter(node, outbox=store),
        registry=registry or WatcherRegistry([ScriptedWatcher]),
        clock=clock or FakeClock(),
        rng=rng or random.Random(0),
        scratch_dir=scratch_dir or Path(tempfile.mkdtemp(prefix="steward-scratch-")),
        nats=NoNats(),
        docker=DockerEngines(),
        processes=ProcessTable(),
        observer=observer,
    )
