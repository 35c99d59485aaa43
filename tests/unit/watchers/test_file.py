"""The file watcher: changed → success, missing → failure, unchanged → nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from steward.machine.spec import WatcherSpec
from steward.watchers.base import Outcome
from steward.watchers.context import Facts
from steward.watchers.file import FileProperties, FileWatcher
from tests.support.fakes import fake_context
from tests.support.machines import Handle, machine_yaml, messages, parse


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


# --- a managed file (contents, owner, group, mode) ---------------------------------------------


def managed(tmp_path: Path, *props: str, facts: dict[str, Any] | None = None) -> FileWatcher:
    spec = parse(machine_yaml("file", *props)).watchers[0]
    context = fake_context(tmp_path, facts=Facts(facts or {}))
    return FileWatcher(spec, Handle(tmp_path, {"port": 8080}), context)


MANAGED = (
    "path: app.conf",
    """contents: 'listen {{ lookup "data.port" 80 }} on {{ lookup "facts.site" "lon" }}'""",
    "owner: root",
    "group: root",
    "mode: '0640'",
)


async def test_a_managed_file_is_written_from_templates_and_kept(tmp_path: Path) -> None:
    watcher = managed(tmp_path, *MANAGED, facts={"site": "nyc"})
    target = tmp_path / "app.conf"
    first = await watcher.check()
    assert (first.outcome, first.payload["reason"]) == (Outcome.SUCCESS, "missing")
    assert target.read_text() == "listen 8080 on nyc"
    assert target.stat().st_mode & 0o7777 == 0o640
    assert (await watcher.check()).outcome is Outcome.UNCHANGED  # as wanted: left alone
    target.chmod(0o644)
    assert (await watcher.check()).payload["reason"] == "mode"
    assert target.stat().st_mode & 0o7777 == 0o640
    time.sleep(0.01)  # a later mtime
    target.write_text("edited by hand")
    again = await watcher.check()
    assert (again.outcome, again.payload["reason"]) == (Outcome.SUCCESS, "changed")
    assert target.read_text() == "listen 8080 on nyc"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".steward-file-")]


async def test_an_existing_file_already_as_wanted_is_not_rewritten_at_start(
    tmp_path: Path,
) -> None:
    target = tmp_path / "app.conf"
    target.write_text("listen 8080 on lon")
    target.chmod(0o640)
    inode = target.stat().st_ino
    result = await managed(tmp_path, *MANAGED).check()
    assert result.outcome is Outcome.UNCHANGED
    assert target.stat().st_ino == inode


async def test_a_managed_file_that_cannot_be_written_is_an_error(tmp_path: Path) -> None:
    props = [*MANAGED[:2], "owner: no-such-user-here", *MANAGED[3:]]
    result = await managed(tmp_path, *props).check()
    assert result.outcome is Outcome.ERROR
    assert "cannot write" in result.detail and "no-such-user-here" in result.detail
    assert not (tmp_path / "app.conf").exists()


def test_a_managed_file_needs_owner_group_and_mode() -> None:
    assert messages(machine_yaml("file", "path: a", "contents: x", "mode: '0999'")) == [
        "m.yaml:16:7: watchers[0].properties: missing required field "
        "'watchers[0].properties.owner'",
        "m.yaml:16:7: watchers[0].properties: missing required field "
        "'watchers[0].properties.group'",
        "m.yaml:18:13: watchers[0].properties.mode: invalid mode '0999': use octal digits "
        "such as 0644",
    ]
    assert messages(machine_yaml("file", "path: a", "mode: '0644'")) == [
        "m.yaml:17:13: watchers[0].properties.mode: applies only with 'contents' (a managed file)"
    ]
