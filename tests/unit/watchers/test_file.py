"""The file watcher: changed → success, missing → failure, unchanged → nothing."""

from __future__ import annotations

import os
from pathlib import Path

from steward.machine.spec import WatcherSpec
from steward.watchers.base import Outcome
from steward.watchers.file import FileProperties, FileWatcher
from tests.support.fakes import fake_context
from tests.support.machines import Handle


def make(tmp_path: Path, path: str, gather: bool = False) -> FileWatcher:
    spec = WatcherSpec("f", "file", FileProperties(path, gather_initial_state=gather))
    return FileWatcher(spec, Handle(tmp_path), fake_context(tmp_path))


async def test_first_sight_is_a_change_then_unchanged_then_change(tmp_path: Path) -> None:
    target = tmp_path / "vars.json"
    target.write_text("{}")
    watcher = make(tmp_path, "vars.json")  # relative: resolves in the machine dir
    assert (await watcher.check()).outcome is Outcome.SUCCESS
    assert (await watcher.check()).outcome is Outcome.UNCHANGED
    target.write_text('{"a": 1}')
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    result = await watcher.check()
    assert result.outcome is Outcome.SUCCESS
    assert result.payload["size"] == 8


async def test_missing_is_failure_and_reappearing_is_a_change(tmp_path: Path) -> None:
    target = tmp_path / "flag"
    watcher = make(tmp_path, str(target))
    missing = await watcher.check()
    assert (missing.outcome, missing.detail) == (Outcome.FAILURE, f"{target} is missing")
    target.write_text("x")
    assert (await watcher.check()).outcome is Outcome.SUCCESS


async def test_gather_initial_state_does_not_count_the_first_sight(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    watcher = make(tmp_path, "f", gather=True)
    assert (await watcher.check()).outcome is Outcome.UNCHANGED
    assert (await watcher.check()).outcome is Outcome.UNCHANGED
