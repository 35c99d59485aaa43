"""Machines on one node: subscribe and foreign_state_required between them."""

from __future__ import annotations

from pathlib import Path

from steward.daemon.node import Node
from steward.machine.history import Cause
from steward.machine.source import Position
from steward.machine.spec import ForeignState, MachineSpec, Subscription, TransitionSpec
from tests.support.fakes import node_services, settle
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
