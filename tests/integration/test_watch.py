"""MachinesWatch on a real directory with real inotify: what wakes the rescan, and how often."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from steward.daemon import watch as watch_module
from steward.daemon.inotify import Change
from steward.daemon.watch import MachinesWatch
from tests.support.daemon import until

DEADLINE = 10.0  # seconds any awaited condition may take
MACHINE = 'name: {name}\nversion: "1.0.0"\ninitial_state: idle\n'


class Rescans:
    """A stand-in for the daemon's rescan that records each call and any overlap."""

    def __init__(self, body: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.calls = 0
        self.finished = 0
        self.active = 0
        self.max_active = 0
        self._body = body

    async def __call__(self) -> None:
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self._body is not None:
                await self._body(self.calls)
        finally:
            self.active -= 1
            self.finished += 1


@pytest.fixture
def machines(tmp_path: Path) -> Path:
    d = tmp_path / "machines"
    (d / "web").mkdir(parents=True)
    (d / "web" / "machine.yaml").write_text(MACHINE.format(name="web"))
    return d


@pytest.fixture
async def started(machines: Path) -> AsyncIterator[tuple[MachinesWatch, Rescans]]:
    rescans = Rescans()
    watch = MachinesWatch(machines, rescans, rescan_interval=3600)
    await watch.start()
    await until("the catch-up rescan after start", lambda: rescans.finished == 1, timeout=DEADLINE)
    try:
        yield watch, rescans
    finally:
        await watch.stop()


def inotify_watches() -> int:
    """How many inotify watches this process holds (Linux: /proc/self/fdinfo)."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            if str(fd.readlink()) == "anon_inode:inotify":
                info = Path(f"/proc/self/fdinfo/{fd.name}").read_text()
                count += sum(1 for line in info.splitlines() if line.startswith("inotify wd:"))
    return count


async def test_the_watches_are_in_place_when_start_returns(machines: Path) -> None:
    (machines / "db").mkdir()
    before = inotify_watches()
    watch = MachinesWatch(machines, Rescans(), rescan_interval=3600)
    await watch.start()
    try:
        # the machines dir and both machine dirs, with no wait at all
        assert inotify_watches() - before == 3
    finally:
        await watch.stop()
    # the notify thread releases its watches as it winds down, just after stop() returns
    await until("the watches to be released", lambda: inotify_watches() == before, timeout=DEADLINE)


async def test_a_new_machine_dir_a_change_and_a_removal_each_wake_a_rescan(
    machines: Path, started: tuple[MachinesWatch, Rescans]
) -> None:
    _, rescans = started
    (machines / "db").mkdir()
    (machines / "db" / "machine.yaml").write_text(MACHINE.format(name="db"))
    await until("a rescan for the new machine dir", lambda: rescans.finished == 2, timeout=DEADLINE)
    (machines / "web" / "machine.yaml").write_text(MACHINE.format(name="web") + "# changed\n")
    await until(
        "a rescan for the changed machine.yaml", lambda: rescans.finished == 3, timeout=DEADLINE
    )
    (machines / "cache.yaml").write_text(MACHINE.format(name="cache"))
    await until(
        "a rescan for a new bare machine file", lambda: rescans.finished == 4, timeout=DEADLINE
    )
    (machines / "db" / "machine.yaml").unlink()
    (machines / "db").rmdir()
    await until(
        "a rescan for the removed machine dir", lambda: rescans.finished == 5, timeout=DEADLINE
    )


async def test_scripts_data_and_editor_files_wake_nothing(
    machines: Path, started: tuple[MachinesWatch, Rescans], caplog: pytest.LogCaptureFixture
) -> None:
    _, rescans = started
    caplog.set_level(logging.DEBUG, logger="steward.reload")
    web = machines / "web"
    for i in range(20):
        (web / f"run-{i}.log").write_text("ran\n")  # what a script writes beside its machine
    (web / "check.sh").write_text("#!/bin/sh\n")
    (web / "data").mkdir()
    (web / "data" / "machine.yaml").write_text("not a machine: too deep\n")
    (web / ".machine.yaml.swp").write_text("vim swap")
    (web / "machine.yaml~").write_text("backup")
    (machines / ".db.yaml.partial").write_text("half")
    (machines / "notes.txt").write_text("beside bare machines")
    (machines / "notes.txt").unlink()
    # a fence: inotify keeps order, so once this is seen every change above was judged
    (machines / "fence.yaml").write_text(MACHINE.format(name="fence"))
    await until("the rescan for fence.yaml", lambda: rescans.finished == 2, timeout=DEADLINE)
    seen = [
        path
        for r in caplog.records
        if r.name == "steward.reload" and r.getMessage() == "machines directory changed"
        for path in r.__dict__["paths"]
    ]
    assert seen == [str(machines / "fence.yaml")]


async def test_a_burst_coalesces_and_rescans_never_overlap(machines: Path) -> None:
    watch: MachinesWatch

    async def slow(call: int) -> None:
        if call == 2:
            for _ in range(10):  # wake-ups during a rescan: exactly one more rescan
                watch.wake()
        await asyncio.sleep(0.05)

    rescans = Rescans(slow)
    watch = MachinesWatch(machines, rescans, rescan_interval=3600)
    await watch.start()
    try:
        await until("the catch-up rescan", lambda: rescans.finished == 1, timeout=DEADLINE)
        for i in range(100):
            d = machines / f"m{i}"
            d.mkdir()
            (d / "machine.yaml").write_text(MACHINE.format(name=f"m{i}"))
        await until(
            "the burst's rescan and the one after it",
            lambda: rescans.finished >= 3,
            timeout=DEADLINE,
        )
    finally:
        await watch.stop()
    assert rescans.max_active == 1
    assert rescans.calls == 3  # catch-up, the burst, the ten wake-ups during it


async def test_the_backstop_rescans_with_no_event_at_all(machines: Path) -> None:
    rescans = Rescans()
    watch = MachinesWatch(machines, rescans, rescan_interval=0.1)
    await watch.start()
    try:
        await until("three backstop rescans", lambda: rescans.finished >= 4, timeout=DEADLINE)
    finally:
        await watch.stop()


async def test_a_file_still_being_written_is_read_only_once_complete(machines: Path) -> None:
    path = machines / "big.yaml"
    complete = MACHINE.format(name="big") + "".join(f"# line {i:04d}\n" for i in range(400))
    seen: list[str | None] = []

    async def read(_: int) -> None:
        seen.append(path.read_text() if path.exists() else None)

    # batches end after 50 ms of quiet or at 200 ms; the writer pauses 20 ms between chunks
    # for about a second, so batches end while it writes: only the settle check keeps the
    # rescan from reading a partial file
    watch = MachinesWatch(machines, Rescans(read), rescan_interval=3600, quiet=0.05, max_batch=0.2)
    await watch.start()

    def write_slowly() -> None:
        with path.open("w") as f:
            for start in range(0, len(complete), 256):
                f.write(complete[start : start + 256])
                f.flush()
                time.sleep(0.02)

    try:
        await until("the catch-up rescan", lambda: len(seen) == 1, timeout=DEADLINE)
        await asyncio.to_thread(write_slowly)
        await until(
            "a rescan that reads the complete file", lambda: complete in seen, timeout=DEADLINE
        )
    finally:
        await watch.stop()
    assert set(seen) <= {None, complete}, [len(s or "") for s in seen]


async def test_stop_lets_a_running_rescan_finish_and_starts_no_other(machines: Path) -> None:
    release = asyncio.Event()

    async def blocked(_: int) -> None:
        await release.wait()

    rescans = Rescans(blocked)
    watch = MachinesWatch(machines, rescans, rescan_interval=3600)
    await watch.start()
    await until("the catch-up rescan to be running", lambda: rescans.active == 1, timeout=DEADLINE)
    watch.wake()
    stopping = asyncio.create_task(watch.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waits for the running rescan
    release.set()
    await asyncio.wait_for(stopping, DEADLINE)
    assert (rescans.calls, rescans.finished) == (1, 1)  # the pending wake-up never ran


async def test_when_inotify_fails_the_backstop_still_rescans(
    machines: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_watches(*_: object, **__: object) -> AsyncIterator[set[tuple[Change, str]]]:
        raise OSError("OS file watch limit reached")
        yield set()  # an async generator, like awatch

    monkeypatch.setattr(watch_module, "awatch", no_watches)
    rescans = Rescans()
    watch = MachinesWatch(machines, rescans, rescan_interval=0.1)
    await watch.start()
    try:
        await until("backstop rescans", lambda: rescans.finished >= 3, timeout=DEADLINE)
    finally:
        await watch.stop()
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage() == (
        f"cannot watch {machines} for changes: OS file watch limit reached; "
        "changes are picked up by the full rescan every 0.1s"
    )
