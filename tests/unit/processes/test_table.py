"""Process tracking per machine: which instance a process belongs to (a pure function over a
process table snapshot), the tag every command carries, and ``end()`` killing what one
machine's commands left running — adopted orphans included, another machine's never."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from steward.processes import INSTANCE_VAR, ProcessTable, ProcStat, owners, process_table
from steward.processes import table as table_module
from steward.processes.owners import instance_tag, kill_owned
from steward.processes.tree import read_stat
from tests.support.fakes import fake_context

PR_SET_CHILD_SUBREAPER = 36
ROOT = 100  # the daemon, in the snapshots below
DEADLINE = 5.0


def stat(
    pid: int, ppid: int, *, sid: int | None = None, pgid: int | None = None, state: str = "S"
) -> ProcStat:
    """A process as /proc shows it; its own session and group leader unless told."""
    return ProcStat(pid, state, ppid, pid if pgid is None else pgid, pid if sid is None else sid)


def snapshot(*stats: ProcStat) -> dict[int, ProcStat]:
    return {s.pid: s for s in (stat(1, 0), stat(ROOT, 1), *stats)}


def tags(mapping: dict[int, str]) -> Callable[[int], str | None]:
    return mapping.get


# owners: the pure attribution ------------------------------------------------------------


def test_a_process_belongs_to_the_instance_in_its_tag() -> None:
    table = snapshot(stat(200, ROOT), stat(300, ROOT), stat(400, 1))
    found = owners(table, ROOT, tags({200: "a", 300: "b", 400: "a"}), {})
    # 400 carries a's tag but is not below the daemon: not ours to judge
    assert found == {200: "a", 300: "b"}


def test_an_untagged_child_belongs_to_its_parents_instance() -> None:
    # 201 cleared its environment; 202, its child, too; both hang under a's command
    table = snapshot(stat(200, ROOT), stat(201, 200, sid=201), stat(202, 201, sid=202))
    assert owners(table, ROOT, tags({200: "a"}), {}) == {200: "a", 201: "a", 202: "a"}


def test_a_tag_beats_the_parents_instance() -> None:
    table = snapshot(stat(200, ROOT), stat(201, 200))
    assert owners(table, ROOT, tags({200: "a", 201: "b"}), {}) == {200: "a", 201: "b"}


def test_an_untagged_orphan_belongs_to_the_command_whose_session_or_group_it_is_in() -> None:
    # commands 500 (a) and 600 (b) exited; their untagged leftovers were adopted by the daemon
    table = snapshot(
        stat(501, ROOT, sid=500, pgid=500),
        stat(502, ROOT, sid=500, pgid=502),  # its own group, still in the session
        stat(601, ROOT, sid=600, pgid=600),
    )
    found = owners(table, ROOT, tags({}), {500: "a", 600: "b"})
    assert found == {501: "a", 502: "a", 601: "b"}


def test_a_session_leader_is_never_attributed_by_its_own_id() -> None:
    # 700 is a new command of another machine between fork and exec (no tag yet, its own
    # session already); a stale record for pid 700 must not make it ours
    table = snapshot(stat(700, ROOT))
    assert owners(table, ROOT, tags({}), {700: "a"}) == {}


def test_an_orphan_that_cleared_its_environment_and_left_the_session_is_nobodys() -> None:
    table = snapshot(stat(800, ROOT, sid=800), stat(801, 800, sid=800))
    assert owners(table, ROOT, tags({}), {500: "a"}) == {}


def test_zombies_and_unattributed_processes_are_left_out() -> None:
    table = snapshot(stat(200, ROOT, state="Z"), stat(300, ROOT), stat(301, 300, sid=300))
    assert owners(table, ROOT, tags({200: "a"}), {}) == {}


# instance_tag, kill_owned: the real /proc ----------------------------------------------------


def _sleeper(
    env: dict[str, str] | None = None, *, new_session: bool = True
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "1000"], env=env, start_new_session=new_session)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    made: list[subprocess.Popen[bytes]] = []
    yield made
    for p in made:
        p.kill()
        p.wait()


def test_instance_tag_reads_the_environment_a_process_started_with(
    children: list[subprocess.Popen[bytes]],
) -> None:
    tagged = _sleeper({"PATH": "/usr/bin:/bin", INSTANCE_VAR: "inst-1", "OTHER": "x"})
    plain = _sleeper({"PATH": "/usr/bin:/bin"})
    children += [tagged, plain]
    assert instance_tag(tagged.pid) == "inst-1"
    assert instance_tag(plain.pid) is None
    assert instance_tag(2**22 + 12345) is None  # no such process


def test_kill_owned_kills_one_instances_processes_and_spares_the_rest(
    children: list[subprocess.Popen[bytes]],
) -> None:
    a1, a2, b1, spared = (_sleeper() for _ in range(4))
    children += [a1, a2, b1, spared]
    fake_tags = {a1.pid: "a", a2.pid: "a", b1.pid: "b", spared.pid: "a"}
    killed = kill_owned({"a"}, os.getpid(), {}, spare={spared.pid}, tag_of=fake_tags.get)
    assert killed == {a1.pid: "a", a2.pid: "a"}
    assert a1.wait(DEADLINE) == -signal.SIGKILL
    assert a2.wait(DEADLINE) == -signal.SIGKILL
    assert b1.poll() is None
    assert spared.poll() is None


# MachineProcesses: the tag, the command table, end() -----------------------------------------


def _script(directory: Path, name: str, body: str) -> tuple[str, ...]:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return (str(path),)


ENV = {"PATH": "/usr/bin:/bin"}

# exits at once, leaving a backgrounded tree, a double-forked setsid child, and a child that
# cleared its environment but stayed in the command's session
LEAVE = """
sh -c 'sleep 1000 & echo $! > bg.pid; wait' &
setsid sh -c 'sleep 1000 & echo $! > setsid.pid' &
env -i /bin/sleep 1000 &
echo $! > cleared.pid
exit 0
"""
PID_FILES = ("bg.pid", "setsid.pid", "cleared.pid")


def wait_for(predicate: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def alive(pid: int) -> bool:
    s = read_stat(pid)
    return s is not None and s.state not in ("Z", "X")


def pids_in(directory: Path) -> list[int]:
    def read() -> list[int] | None:
        try:
            texts = [(directory / f).read_text().strip() for f in PID_FILES]
        except FileNotFoundError:
            return None
        return [int(t) for t in texts] if all(texts) else None

    pids: list[int] = wait_for(read, f"the pids in {directory}")
    return pids


@pytest.fixture
def subreaper() -> Iterator[None]:
    """This test process as the daemon is: orphans of its commands are reparented to it. At
    teardown, what is left is killed and reaped (while still a subreaper, so the orphans of
    the killed come back to it too), and the process is an ordinary one again."""
    libc = ctypes.CDLL(None, use_errno=True)
    me = os.getpid()
    before = {s.pid for s in process_table().values() if s.ppid == me}
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        deadline = time.monotonic() + DEADLINE
        while left := [
            s.pid for s in process_table().values() if s.ppid == me and s.pid not in before
        ]:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            if time.monotonic() > deadline:
                break
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


async def test_every_command_carries_its_machines_instance(tmp_path: Path) -> None:
    processes = fake_context(tmp_path, machine="m1").processes
    forged = {**ENV, INSTANCE_VAR: "someone-else"}  # a watcher's `environment` cannot win
    run = await processes.run(("/usr/bin/env",), tmp_path, forged, 5.0)
    assert run.exit_code == 0
    assert f"{INSTANCE_VAR}={processes.instance}" in run.stdout.splitlines()
    assert "someone-else" not in run.stdout


async def test_a_command_is_remembered_while_its_group_has_members(
    tmp_path: Path, subreaper: None
) -> None:
    table = ProcessTable()
    processes = table.for_machine("m1", "a")
    quiet = await processes.run(("/bin/true",), tmp_path, ENV, 5.0)
    assert quiet.exit_code == 0
    assert table.commands == {}  # nothing left in its group: forgotten at once
    argv = _script(tmp_path, "bg.sh", "sleep 1000 & echo $! > left.pid\n")
    await processes.run(argv, tmp_path, ENV, 5.0)
    left = int((tmp_path / "left.pid").read_text())
    (command,) = table.commands  # its background sleep is still in the command's group
    assert table.commands == {command: "a"}
    assert (leftover := read_stat(left)) is not None and leftover.pgid == command
    os.kill(left, signal.SIGKILL)
    os.waitpid(left, 0)  # the test process adopted it
    await processes.run(("/bin/true",), tmp_path, ENV, 5.0)
    assert table.commands == {}  # checked again at the next exit: the group is empty
    assert table.waiting == set()


async def test_end_kills_what_one_machine_left_and_never_another_machines(
    tmp_path: Path, subreaper: None
) -> None:
    table = ProcessTable()
    dirs = {name: tmp_path / name for name in ("a", "b")}
    left: dict[str, list[int]] = {}
    for name, directory in dirs.items():
        directory.mkdir()
        processes = table.for_machine(name, f"instance-{name}")
        run = await processes.run(_script(directory, "leave.sh", LEAVE), directory, ENV, 5.0)
        assert run.exit_code == 0
        left[name] = pids_in(directory)
    assert all(alive(p) for pids in left.values() for p in pids)

    a = table.for_machine("a", "instance-a")
    killed = await a.end()
    # bg's inner sh and its sleep, the setsid'd sleep, the env -i sleep (the setsid'd sh has
    # exited by itself, or is killed too)
    assert killed >= 4
    await asyncio.to_thread(wait_for, lambda: not any(alive(p) for p in left["a"]), "a's end")
    assert all(alive(p) for p in left["b"]), "instance b's processes were touched"

    # a new instance of machine a is not the old one
    again = table.for_machine("a", "instance-a2")
    argv = _script(dirs["a"], "again.sh", "sleep 1000 & echo $! > again.pid\n")
    assert (await again.run(argv, dirs["a"], ENV, 5.0)).exit_code == 0
    new = int((dirs["a"] / "again.pid").read_text())
    assert await a.end() == 0
    assert alive(new)

    killed_b = await table.for_machine("b", "instance-b").end()
    assert killed_b >= 4
    assert await again.end() == 1
    await asyncio.to_thread(
        wait_for, lambda: not any(alive(p) for p in (*left["b"], new)), "b's end"
    )
    assert table.ended == killed + killed_b + 1
    assert table.commands == {}
    assert table.end_failures == 0


async def test_machines_that_stop_together_share_one_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[set[str]] = []

    def fake_kill_owned(instances: set[str], *args: Any) -> dict[int, str]:
        calls.append(set(instances))
        return {}

    monkeypatch.setattr(table_module, "kill_owned", fake_kill_owned)
    table = ProcessTable()
    machines = [table.for_machine(n, n) for n in ("a", "b", "c", "timers-only")]
    for m in machines[:3]:
        assert (await m.run(("/bin/true",), tmp_path, ENV, 5.0)).exit_code == 0
    ended = await asyncio.gather(*(m.end() for m in machines))
    assert ended == [0, 0, 0, 0]
    # one walk for the three that ran commands; none for the one that never ran one
    assert calls == [{"a", "b", "c"}]
    assert await machines[0].end() == 0
    assert calls == [{"a", "b", "c"}]  # ended once: nothing of it can be left


async def test_end_is_bounded_in_time_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def stuck(*args: Any) -> dict[int, str]:
        release.wait(DEADLINE)  # a /proc read that hangs
        return {}

    monkeypatch.setattr(table_module, "kill_owned", stuck)
    table = ProcessTable(end_timeout=0.2)
    for instance in ("a", "b"):
        run = await table.for_machine("m1", instance).run(("/bin/true",), tmp_path, ENV, 5.0)
        assert run.exit_code == 0
    started = time.monotonic()
    try:
        assert await table.for_machine("m1", "a").end() == 0
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert table.end_failures == 1

    def broken(*args: Any) -> dict[int, str]:
        raise OSError("no /proc")

    monkeypatch.setattr(table_module, "kill_owned", broken)
    with caplog.at_level(logging.ERROR, logger="steward.processes"):
        assert await table.for_machine("m1", "b").end() == 0
    assert table.end_failures == 2
    assert "cannot end the processes" in caplog.text
