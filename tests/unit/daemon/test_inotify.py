"""inotify on the machines directory and the directories in it (a real kernel watch)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from steward.daemon.inotify import IN_Q_OVERFLOW, Change, Inotify, merge

DEADLINE = 10.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "machines"
    (d / "web").mkdir(parents=True)
    (d / "web" / "machine.yaml").write_text("name: web\n")
    return d


@pytest.fixture
def notify(root: Path) -> Iterator[Inotify]:
    n = Inotify(root)
    yield n
    n.close()


async def changes_until(
    notify: Inotify, done: Callable[[set[tuple[Change, str]]], bool]
) -> set[tuple[Change, str]]:
    seen: set[tuple[Change, str]] = set()
    async with asyncio.timeout(DEADLINE):
        while not done(seen):
            seen |= set(notify.read())
            await asyncio.sleep(0.005)
    return seen


def test_nothing_happened_reads_nothing(notify: Inotify) -> None:
    assert notify.read() == []


async def test_entries_of_the_directory_and_of_its_directories(root: Path, notify: Inotify) -> None:
    (root / "db.yaml").write_text("name: db\n")
    (root / "web" / "machine.yaml").write_text("name: web2\n")
    (root / "web" / "machine.yaml").rename(root / "web" / "old.yaml")
    (root / "db.yaml").unlink()
    want = {
        (Change.added, str(root / "db.yaml")),
        (Change.modified, str(root / "web" / "machine.yaml")),
        (Change.deleted, str(root / "web" / "machine.yaml")),
        (Change.added, str(root / "web" / "old.yaml")),
        (Change.deleted, str(root / "db.yaml")),
    }
    assert want <= await changes_until(notify, lambda seen: want <= seen)


async def test_a_new_directory_is_watched_and_deeper_ones_are_not(
    root: Path, notify: Inotify
) -> None:
    (root / "api").mkdir()
    await changes_until(notify, lambda seen: (Change.added, str(root / "api")) in seen)
    (root / "api" / "machine.yaml").write_text("name: api\n")
    (root / "web" / "data").mkdir()
    (root / "web" / "data" / "out.log").write_text("deep\n")
    seen = await changes_until(
        notify, lambda seen: (Change.added, str(root / "api" / "machine.yaml")) in seen
    )
    assert not [raw for _, raw in seen if "out.log" in raw]


async def test_a_removed_directory_drops_its_watch(root: Path, notify: Inotify) -> None:
    (root / "web" / "machine.yaml").unlink()
    (root / "web").rmdir()
    await changes_until(notify, lambda seen: (Change.deleted, str(root / "web")) in seen)
    assert notify.read() == []


def test_an_overflowing_queue_is_a_change_of_the_directory(root: Path, notify: Inotify) -> None:
    assert notify._change(-1, IN_Q_OVERFLOW, b"") == (Change.modified, str(root))


def test_a_missing_directory_cannot_be_watched(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Inotify(tmp_path / "absent")


def test_close_releases_the_descriptor(root: Path) -> None:
    notify = Inotify(root)
    fd = notify.fd
    notify.close()
    with pytest.raises(OSError):
        os.fstat(fd)
    notify.close()  # twice: nothing


def test_a_batch_has_one_change_per_path() -> None:
    batch: dict[str, Change] = {}
    merge(batch, [(Change.added, "a"), (Change.modified, "a"), (Change.modified, "b")])
    assert batch == {"a": Change.added, "b": Change.modified}
    merge(batch, [(Change.deleted, "a"), (Change.added, "b")])
    assert batch == {"a": Change.deleted, "b": Change.added}
