"""Machines for tests: specs built in code, machine.yaml text parsed by the real validator,
a running machine on fakes (``Harness``), the handle a lone watcher reports to (``Handle``),
and scripts in a machine directory."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

from steward.errors import Problem, SpecError
from steward.machine.runtime import RunningMachine
from steward.machine.source import Position
from steward.machine.spec import ForeignState, MachineSpec, TransitionSpec, WatcherSpec
from steward.machine.validate import parse_machine
from steward.watchers.base import WatcherResult
from steward.watchers.registry import WatcherRegistry, default_registry
from steward.watchers.timer import TimerWatcher
from tests.support.fakes import (
    FakeClock,
    FakeNode,
    FakeStore,
    ScriptedProperties,
    ScriptedWatcher,
    node_services,
    settle,
)

# specs built in code ------------------------------------------------------------------------
POS = Position("m.yaml", 1, 1, "")


def t(name: str, sources: list[str], dest: str) -> TransitionSpec:
    return TransitionSpec(name, tuple(sources), dest)


def w(
    name: str,
    *,
    states: tuple[str, ...] = (),
    success: str | None = None,
    fail: str | None = None,
    interval: float | None = None,
    foreign: tuple[ForeignState, ...] = (),
    wtype: str = "scripted",
    props: Any = None,
) -> WatcherSpec:
    return WatcherSpec(
        name=name,
        type=wtype,
        properties=props if props is not None else ScriptedProperties(),
        state_match=states,
        foreign_state_required=foreign,
        success_transition=success,
        fail_transition=fail,
        interval=interval,
    )


TRANSITIONS = (
    t("up", ["a"], "b"),
    t("down", ["b"], "a"),
    t("stay", ["a"], "a"),
    t("park", ["a", "b"], "c"),
)


def machine_spec(*watchers: WatcherSpec, splay: float = 0, resume: bool = True) -> MachineSpec:
    return MachineSpec(
        name="m",
        version="1.0.0",
        initial_state="a",
        transitions=TRANSITIONS,
        watchers=tuple(watchers),
        path=Path("m.yaml"),
        directory=Path(),
        checksum="x",
        splay_start=splay,
        resume=resume,
    )


class Harness:
    def __init__(self, spec: MachineSpec, store: FakeStore | None = None) -> None:
        self.clock = FakeClock()
        self.store = store or FakeStore()
        self.node = FakeNode()
        self.services = node_services(
            store=self.store,
            registry=WatcherRegistry([ScriptedWatcher, TimerWatcher]),
            clock=self.clock,
            rng=random.Random(1),
        )
        self.events = self.services.events
        self.machine = RunningMachine(spec, node=self.node, services=self.services)

    def watcher(self, name: str) -> Any:
        return next(x for x in self.machine.watchers if x.name == name)

    async def start(self) -> RunningMachine:
        await self.machine.start()
        await settle()
        return self.machine


# machine.yaml text through the real validator -------------------------------------------------
# Lines 1-10: the top level and two transitions (idle -start-> running -stop-> idle).
MINIMAL = textwrap.dedent(
    """\
    name: demo
    version: 1.0.0
    initial_state: idle
    transitions:
      - name: start
        from: [idle]
        destination: running
      - name: stop
        from: [running]
        destination: idle
    """
)


def parse(text: str | bytes, file: str = "m.yaml") -> MachineSpec:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return parse_machine(raw, default_registry(), file=file, path=Path(file), directory=Path())


def problems(text: str | bytes) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        parse(text)
    return caught.value.problems


def messages(text: str | bytes) -> list[str]:
    return [str(p) for p in problems(text)]


def machine_yaml(wtype: str, *props: str) -> str:
    """MINIMAL plus one watcher; its first property is line 16."""
    body = "".join(f"      {p}\n" for p in props)
    return (
        MINIMAL
        + textwrap.dedent(
            f"""\
        watchers:
          - name: probe
            type: {wtype}
            success_transition: start
            properties:
        """
        )
        + body
    )


# one watcher outside any machine --------------------------------------------------------------
class Handle:
    """A MachineHandle for one watcher, outside any running machine."""

    def __init__(
        self,
        directory: Path,
        data: dict[str, Any] | None = None,
        *,
        name: str = "m1",
        state: str = "checking",
    ) -> None:
        self.name = name
        self.directory = directory
        self.state = state
        self.state_version = 0
        self.data = data if data is not None else {}  # the test may change it under the watcher
        self.results: list[WatcherResult] = []

    def data_snapshot(self) -> dict[str, Any]:
        return dict(self.data)

    def submit_result(self, watcher: Any, result: WatcherResult, version: int) -> None:
        self.results.append(result)


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path
