"""Looking a program up on a PATH: ``which`` answers as ``shutil.which`` does (POSIX)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from steward.processes.command import resolve_program, which


def executable(path: Path, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


@pytest.fixture
def bins(tmp_path: Path) -> tuple[Path, Path, Path]:
    first, second, third = (tmp_path / name for name in ("a", "b", "c"))
    for directory in (first, second, third):
        directory.mkdir()
    executable(first / "noexec", 0o644)
    executable(second / "noexec")
    (first / "dir").mkdir()
    executable(second / "dir")
    executable(second / "tool")
    executable(third / "tool")
    (third / "link").symlink_to(third / "tool")
    (third / "dangling").symlink_to(third / "missing")
    return first, second, third


@pytest.mark.parametrize("program", ["tool", "noexec", "dir", "link", "dangling", "missing"])
def test_which_answers_as_shutil_which(bins: tuple[Path, Path, Path], program: str) -> None:
    first, second, third = bins
    for path in (
        os.pathsep.join(map(str, (first, second, third))),
        os.pathsep.join(map(str, (third, first, first, second))),
        str(first),
        "",
    ):
        assert which(program, path) == shutil.which(program, path=path), (program, path)


def test_which_finds_the_first_executable_file(bins: tuple[Path, Path, Path]) -> None:
    first, second, third = bins
    path = os.pathsep.join(map(str, (first, second, third)))
    assert which("tool", path) == str(second / "tool")
    assert which("noexec", path) == str(second / "noexec")  # not the unexecutable one first
    assert which("dir", path) == str(second / "dir")  # not a directory
    assert which("missing", path) is None


def test_an_empty_path_entry_is_the_working_directory(
    bins: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(bins[1])
    assert which("tool", os.pathsep.join(["", str(bins[2])])) == "tool"


def test_resolve_program_joins_a_relative_path_to_the_machine_dir(tmp_path: Path) -> None:
    assert resolve_program("./check.sh", tmp_path, "/bin") == str(tmp_path / "check.sh")
    assert resolve_program("/bin/sh", tmp_path, "") == "/bin/sh"
    assert resolve_program("sh", tmp_path, "/nonexistent:/bin") == "/bin/sh"
