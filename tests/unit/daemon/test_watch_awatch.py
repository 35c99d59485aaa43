"""``watch.awatch``: batches of filtered changes from inotify on the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from steward.daemon.watch import Change, awatch

DEADLINE = 10.0


def inotify_fds() -> int:
    """This process's open inotify descriptors."""
    return sum(1 for fd in Path("/proc/self/fd").iterdir() if "inotify" in _link(fd))


def _link(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return ""


async def test_changes_come_in_filtered_batches_until_the_stop_event(tmp_path: Path) -> None:
    stop = asyncio.Event()
    batches: list[set[tuple[Change, str]]] = []

    async def consume() -> None:
        async for batch in awatch(
            tmp_path,
            watch_filter=lambda _, path: not path.endswith(".tmp"),
            debounce=1000,
            step=20,
            stop_event=stop,
        ):
            batches.append(batch)

    before = inotify_fds()
    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the watches are in place before awatch's first await
    (tmp_path / "skipped.tmp").write_text("x")
    (tmp_path / "a.yaml").write_text("x")
    async with asyncio.timeout(DEADLINE):
        while not batches:
            await asyncio.sleep(0.01)
    assert (Change.added, str(tmp_path / "a.yaml")) in batches[0]
    assert all(not path.endswith(".tmp") for batch in batches for _, path in batch)
    stop.set()
    async with asyncio.timeout(DEADLINE):
        await task
    assert inotify_fds() == before  # closed when the generator ended


async def test_a_burst_is_one_batch(tmp_path: Path) -> None:
    stop = asyncio.Event()
    batches: list[set[tuple[Change, str]]] = []

    async def consume() -> None:
        async for batch in awatch(
            tmp_path, watch_filter=lambda *_: True, debounce=5000, step=300, stop_event=stop
        ):
            batches.append(batch)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    for i in range(5):
        (tmp_path / f"m{i}.yaml").write_text("x")
        await asyncio.sleep(0.02)  # well within the quiet time (step)
    async with asyncio.timeout(DEADLINE):
        while not batches:
            await asyncio.sleep(0.01)
    assert {raw for _, raw in batches[0]} >= {str(tmp_path / f"m{i}.yaml") for i in range(5)}
    stop.set()
    async with asyncio.timeout(DEADLINE):
        await task


async def test_a_cancelled_watch_closes_its_descriptor(tmp_path: Path) -> None:
    stop = asyncio.Event()

    async def consume() -> None:
        async for _ in awatch(
            tmp_path, watch_filter=lambda *_: True, debounce=1000, step=20, stop_event=stop
        ):
            pass

    before = inotify_fds()
    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    assert inotify_fds() == before + 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inotify_fds() == before
