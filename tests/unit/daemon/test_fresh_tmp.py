"""The daemon's temp dir is emptied at start: absent, empty, or holding what a killed daemon
left (the last case alone imports shutil for its rmtree)."""

from __future__ import annotations

from pathlib import Path

from steward.daemon.server import _fresh_tmp


def test_absent_or_empty_tmp_is_made_private(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    assert _fresh_tmp(tmp) == tmp
    assert tmp.is_dir() and (tmp.stat().st_mode & 0o777) == 0o700
    assert _fresh_tmp(tmp) == tmp and list(tmp.iterdir()) == []


def test_files_a_killed_daemon_left_are_removed(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    (tmp / "deep" / "er").mkdir(parents=True)
    (tmp / "deep" / "er" / "data.json").write_text("{}")
    (tmp / "facts.json").write_text("{}")
    _fresh_tmp(tmp)
    assert tmp.is_dir() and list(tmp.iterdir()) == []
