"""Machines on one node: subscribe and foreign_state_required between them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steward.daemon.node import Node
from steward.machine.history import Cause
from steward.machine.persistence import SavedMachine
from steward.machine.source import Position
from steward.machine.spec import ForeignState, MachineSpec, Subscription, TransitionSpec
from tests.support.fakes import FakeStore, node_services, settle
from tests.support.machines import w

POS = Position("m.yaml", 1, 1, "")


def spec(name: str, transitions: tuple[TransitionSpec, ...], *watchers: object) -> MachineSpec:
    return MachineSpec(
        name=name,
        version="1.0.0",
        initial_state="idle",
        transitions=transitions,
        watchers=tuple(watchers),  # type: ignore[arg-type]
        path=Path(f"{name}.yaml"),
        directory=Path(),
        checksum=name,
    )


def node() -> Node:
    return Node(node_services())


async def test_subscriber_follows_the_publisher() -> None:
    n = node()
    publisher = spec("pub", (TransitionSpec("go", ("idle",), "busy"),))
    follower = spec(
        "sub",
        (
            TransitionSpec(
                "follow", ("idle",), "following", subscribe=(Subscription("pub", "go", POS),)
            ),
        ),
    )
    await n.add(publisher)
    await n.add(follower)
    try:
        await n.get("pub").fire("go")
        await settle()
        assert n.get("sub").state == "following"
        assert n.get("sub").seq == 1
        (entry,) = n.get("sub").recent_history
        assert entry.cause == Cause.subscribed("pub", "go")
        assert entry.cause.as_dict() == {"kind": "subscribe", "text": "subscribe pub.go"}
    finally:
        await n.stop()


async def test_foreign_state_follows_the_other_machine() -> None:
    n = node()
    leader = spec("leader", (TransitionSpec("ready", ("idle",), "ready"),))
    gated = w("gated", foreign=(ForeignState("leader", "ready", POS),))
    worker = spec("worker", (TransitionSpec("x", ("idle",), "done"),), gated)
    await n.add(worker)  # added before the machine it depends on
    try:
        await settle()
        watcher = n.get("worker").watchers[0]
        assert not watcher.active
        await n.add(leader)
        await n.get("leader").fire("ready")
        await settle()
        assert watcher.active
        await n.remove("leader")
        await settle()
        assert not watcher.active
    finally:
        await n.stop()


class CountingStore(FakeStore):
    """A FakeStore that counts the calls a start makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def load(self, name: str) -> SavedMachine | None:
        self.calls.append("load")
        return await super().load(name)

    async def load_many(self, names: Sequence[str]) -> dict[str, SavedMachine]:
        self.calls.append("load_many")
        return await super().load_many(names)

    async def save_many(self, saved: Sequence[SavedMachine]) -> None:
        self.calls.append("save_many")
        await super().save_many(saved)

    async def history_many(self, names: Sequence[str], limit: int) -> dict[str, list[Any]]:
        self.calls.append("history_many")
        return await super().history_many(names, limit)


async def test_add_all_starts_machines_as_add_does_with_one_read_and_one_write() -> None:
    store = CountingStore()
    store.rows["back"] = SavedMachine("back", "0.9.0", "busy", 5.0, 3, {"k": 1})
    n = Node(node_services(store=store))
    go = (TransitionSpec("go", ("idle",), "busy"),)
    try:
        added = await n.add_all([spec("back", go), spec("new", go)])
        assert store.calls == ["load_many", "history_many", "save_many"]
        assert [m.name for m in added] == ["back", "new"]
        back, new = n.get("back"), n.get("new")
        assert (back.state, back.seq, back.resumed, back.data) == ("busy", 3, True, {"k": 1})
        assert (new.state, new.seq, new.resumed) == ("idle", 0, False)
        assert store.rows["new"].state == "idle"
        steps = [(e.machine, json.loads(e.body)["data"]["step"]) for e in store.outbox]
        assert steps == [
            ("back", "loaded"),
            ("back", "resumed"),
            ("new", "loaded"),
            ("new", "started"),
        ]
        await n.get("new").fire("go")
        assert store.rows["new"].seq == 1
    finally:
        await n.stop()


async def test_an_idle_machine_has_no_task() -> None:
    n = node()
    await n.add(spec("quiet", (TransitionSpec("go", ("idle",), "busy"),)))
    try:

        def machine_tasks() -> list[str]:
            names = (t.get_name() for t in asyncio.all_tasks())
            return [name for name in names if name.startswith("machine")]

        await settle()
        assert machine_tasks() == []
        result = await n.get("quiet").fire("go")  # a worker drains the queue, then ends
        assert result.to_state == "busy"
        await settle()
        assert machine_tasks() == []
    finally:
        await n.stop()
