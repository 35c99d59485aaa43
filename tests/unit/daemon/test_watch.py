"""Which file changes wake a rescan, and how long a file still being written is left to settle."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import steward.daemon.watch as watch_module
from steward.daemon.inotify import Change
from steward.daemon.watch import (
    DefinitionFilter,
    MachinesWatch,
    settle_time,
    top_level_directories,
)


@pytest.fixture
def machines(tmp_path: Path) -> Path:
    d = tmp_path / "machines"
    (d / "web").mkdir(parents=True)
    (d / "web" / "machine.yaml").write_text("name: web\n")
    (d / "db.yaml").write_text("name: db\n")
    return d


def selected(f: DefinitionFilter, *changes: tuple[Change, Path]) -> list[str]:
    candidates = [(c, str(p)) for c, p in changes if f.candidate(c, str(p))]
    return [str(p.relative_to(f.machines_dir)) for p in f.select(candidates)]


@pytest.mark.parametrize(
    "relative",
    [
        "web/machine.yaml",  # a machine dir's definition
        "db.yaml",  # a bare machine file
        "new.yml",
    ],
)
def test_definitions_are_relevant(machines: Path, relative: str) -> None:
    f = DefinitionFilter(machines)
    for change in Change:
        assert selected(f, (change, machines / relative)) == [relative]


@pytest.mark.parametrize(
    "relative",
    [
        "web/check.sh",  # a script beside its machine
        "web/out.json",  # what a script writes
        "web/data/state.txt",  # deeper still
        "web/data/machine.yaml",  # not a machine: too deep
        "web/.machine.yaml.swp",  # vim's swap file
        "web/machine.yaml~",  # a backup
        "web/machine.yaml.tmp",
        "web/4913",  # vim's write test
        ".web.yaml.partial",  # hidden temp at the top (rsync, write_atomic)
        ".hidden/machine.yaml",  # a hidden machine dir is never a machine
        "old.tmp/machine.yaml",
        "db.yaml.swp",
        "db.yaml-temp",
        "#db.yaml#",
        "notes.txt",  # a file beside bare machines (their scripts write here)
    ],
)
def test_files_that_cannot_change_a_definition_are_ignored(machines: Path, relative: str) -> None:
    path = machines / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    f = DefinitionFilter(machines, top_level_directories(machines))
    for change in Change:
        assert selected(f, (change, path)) == [], change


def test_directories_at_the_top_level_appearing_and_going(machines: Path) -> None:
    f = DefinitionFilter(machines, top_level_directories(machines))
    assert f.directories == {"web"}
    (machines / "api").mkdir()
    assert selected(f, (Change.added, machines / "api")) == ["api"]
    assert f.directories == {"web", "api"}
    # a mode change of a machine dir can change what loads (permission checks)
    assert selected(f, (Change.modified, machines / "web")) == ["web"]
    (machines / "api").rmdir()
    assert selected(f, (Change.deleted, machines / "api")) == ["api"]
    assert f.directories == {"web"}
    # a top-level file that was never a directory (a script's output) going away: nothing
    assert selected(f, (Change.deleted, machines / "output.log")) == []
    # a directory deeper down is not a machine dir
    (machines / "web" / "data").mkdir()
    assert selected(f, (Change.added, machines / "web" / "data")) == []


def test_a_renamed_machine_dir_is_both_going_and_coming(machines: Path) -> None:
    f = DefinitionFilter(machines, top_level_directories(machines))
    (machines / "web").rename(machines / "www")
    got = selected(f, (Change.deleted, machines / "web"), (Change.added, machines / "www"))
    assert sorted(got) == ["web", "www"]


def test_top_level_directories_skips_ignored_names_and_files(machines: Path) -> None:
    (machines / ".git").mkdir()
    (machines / "x.tmp").mkdir()
    assert top_level_directories(machines) == {"web"}
    assert top_level_directories(machines / "absent") == set()


def test_settle_time_waits_for_a_file_written_just_now(tmp_path: Path) -> None:
    path = tmp_path / "machine.yaml"
    path.write_text("name: x\n")
    os.utime(path, (1000.0, 1000.0))
    assert settle_time([path], 0.1, now=1000.03) == pytest.approx(0.07)
    assert settle_time([path], 0.1, now=1000.1) == 0
    assert settle_time([path], 0.1, now=1005.0) == 0
    # an mtime in the future (clock skew, cp -p of a newer file) tells nothing
    assert settle_time([path], 0.1, now=999.0) == 0
    # gone, or a directory: nothing to wait for
    assert settle_time([tmp_path / "gone.yaml", tmp_path], 0.1, now=1000.0) == 0


def test_settle_time_is_the_longest_wait(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for p, t in ((a, 1000.0), (b, 1000.08)):
        p.write_text("x")
        os.utime(p, (t, t))
    assert settle_time([a, b], 0.1, now=1000.09) == pytest.approx(0.09)


async def test_a_stop_while_a_change_settles_ends_the_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() during the settle (a file still being written) must not be lost: the dispatcher
    clears the wake-up after the settle, so it has to look at the stop before it does."""
    settling = asyncio.Event()

    def still_written(paths: list[Path], quiet: float) -> float:
        settling.set()
        return 0.05

    monkeypatch.setattr(watch_module, "settle_time", still_written)
    rescans = 0

    async def rescan() -> None:
        nonlocal rescans
        rescans += 1

    watch = MachinesWatch(tmp_path, rescan, rescan_interval=3600, max_settle=30)
    await watch.start()
    async with asyncio.timeout(5):
        await settling.wait()
        await watch.stop()
    assert rescans == 0, "a stopping watch starts no rescan"
