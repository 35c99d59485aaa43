"""Every registered watcher type honours the same contract.

Built from a spec (validated from machine.yaml text, as the daemon does) and a fake context;
run once, it hands its machine one typed result whose state is plain JSON; cancelled in the
middle of a check, it ends at once and leaves nothing running; its status names its type.
A new watcher type fails here until it has a sample below: one line.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from steward.machine.validate import parse_machine
from steward.processes import ProcessTable, process_table
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.registry import default_registry
from tests.support.fakes import FakeClock, fake_context, settle
from tests.support.machines import Handle

# one small, valid, quick watcher of each type: properties as YAML
SAMPLES: dict[str, str] = {
    "exec": "command: ./slow.sh",
    "timer": "timer: 30s",
    "file": "path: watched.txt",
    "health": "command: ./slow.sh",
    "nagios": "plugin: ./slow.sh",
    "schedule": "schedules: ['* * * * *']\nduration: 1m",
    "docker": "container: steward-contract\ndocker_host: unix:///nonexistent/docker.sock",
    "gossip": "subject: steward.contract\npayload: hello",
    "metric": "command: ./slow.sh\ntimeout: 60s",
    "expression": "success_when: data.key == 'value'",
    "kv": "bucket: CONTRACT\nkey: spec\nmode: watch\nrepublish_trigger: repub.spec",
    "archive": "source: http://127.0.0.1:9/a.tgz\nchecksum: abc\ntarget: t\ncreates: app",
    "machines": "data_item: spec\npurge_unknown: true\nmachine_manage_interval: 5m",
    "plugins": "data_item: spec\nmanager_machine_prefix: pm\nplugins_directory: plugins",
}
TYPES = default_registry().names()


def build(wtype: str, tmp_path: Path, clock: FakeClock, table: ProcessTable) -> Watcher:
    properties = textwrap.indent(SAMPLES[wtype], "      ")
    cls = default_registry().get(wtype)
    assert cls is not None
    success = "    success_transition: ok\n" if cls.fires_success else ""
    text = (
        "name: contract\nversion: 1.0.0\ninitial_state: watching\n"
        "transitions:\n  - {name: fail, from: [watching], destination: failed}\n"
        "  - {name: ok, from: [failed], destination: watching}\n"
        f"watchers:\n  - name: w\n    type: {wtype}\n    state_match: [watching]\n"
        f"{success}    fail_transition: fail\n    properties:\n{properties}\n"
    )
    spec = parse_machine(
        text.encode(),
        default_registry(),
        file="m.yaml",
        path=tmp_path / "m.yaml",
        directory=tmp_path,
    )
    (tmp_path / "slow.sh").write_text("#!/bin/sh\n[ -e go ] || sleep 30\necho OK\n")
    (tmp_path / "slow.sh").chmod(0o755)
    (tmp_path / "watched.txt").write_text("x")
    context = fake_context(tmp_path / "scratch", clock=clock, processes=table)
    (tmp_path / "scratch").mkdir(exist_ok=True)
    watcher = cls(
        spec.watchers[0],
        Handle(tmp_path, {"key": "value"}, name="contract", state="watching"),
        context,
    )
    assert isinstance(watcher.spec.properties, cls.Properties)  # typed, validated properties
    return watcher


async def first_result(watcher: Watcher, clock: FakeClock) -> WatcherResult:
    handle = watcher.machine
    assert isinstance(handle, Handle)
    async with asyncio.timeout(20):
        while not handle.results:
            await clock.advance(31)  # timers and intervals run on the fake clock
            await asyncio.sleep(0.01)  # processes, threads and sockets on the real one
    return handle.results[0]


def running_from(directory: Path) -> set[int]:
    """Live processes whose command line names a file in ``directory`` (the sample script)."""
    found = set()
    for stat in process_table().values():
        if stat.state in ("Z", "X"):
            continue
        try:
            cmdline = Path(f"/proc/{stat.pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(directory).encode() in cmdline:
            found.add(stat.pid)
    return found


def test_every_registered_type_has_a_sample() -> None:
    assert sorted(SAMPLES) == TYPES


@pytest.mark.parametrize("wtype", TYPES)
async def test_runs_once_and_reports_a_typed_state(wtype: str, tmp_path: Path) -> None:
    clock, table = FakeClock(), ProcessTable()
    watcher = build(wtype, tmp_path, clock, table)
    (tmp_path / "go").touch()  # commands answer at once
    watcher.activate()
    try:
        result = await first_result(watcher, clock)
    finally:
        await watcher.close()
    assert isinstance(result, WatcherResult)
    assert isinstance(result.outcome, Outcome)
    assert isinstance(result.detail, str) and result.detail
    assert isinstance(result.payload, Mapping)
    json.dumps(dict(result.payload))  # the state event's payload is plain JSON
    status = watcher.status()
    assert status["type"] == wtype == watcher.TYPE
    handle = watcher.machine
    assert isinstance(handle, Handle)
    assert status["runs"] == len(handle.results) >= 1  # a retry with backoff may follow
    assert status["last_outcome"] == handle.results[-1].outcome.value
    json.dumps(status)


@pytest.mark.parametrize("wtype", TYPES)
async def test_cancelled_mid_check_it_ends_at_once_and_leaves_nothing(
    wtype: str, tmp_path: Path
) -> None:
    clock, table = FakeClock(), ProcessTable()
    watcher = build(wtype, tmp_path, clock, table)
    handle = watcher.machine
    assert isinstance(handle, Handle)
    watcher.activate()
    await settle()
    await asyncio.sleep(0.2)  # a command, if the type runs one, is now in its 30 s sleep
    async with asyncio.timeout(5):
        await watcher.close()
    assert not watcher.active
    assert watcher._task is None
    assert table.waiting == set()  # no command asyncio still waits for
    assert running_from(tmp_path) == set()  # the command and its children were killed
    reported = len(handle.results)
    if wtype in ("exec", "health", "nagios", "timer"):
        assert reported == 0  # the check was cut short: nothing half-done is reported
    (tmp_path / "go").touch()
    await clock.advance(120)
    await asyncio.sleep(0.1)
    assert len(handle.results) == reported  # closed means closed
