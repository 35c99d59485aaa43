"""``files``: new private files as ``tempfile.mkstemp`` makes them, and atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from steward.files import NAME_ATTEMPTS, create_new, write_atomically


def test_create_new_makes_a_private_empty_file_with_a_fresh_name(tmp_path: Path) -> None:
    names = set()
    for _ in range(50):
        fd, path = create_new(tmp_path, "pre-", ".json")
        os.close(fd)
        names.add(path)
        name = Path(path).name
        assert Path(path).parent == tmp_path and Path(path).is_absolute()
        assert name.startswith("pre-") and name.endswith(".json") and len(name) > 9
        st = os.lstat(path)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_size == 0
    assert len(names) == 50


def test_create_new_returns_a_writable_close_on_exec_descriptor(tmp_path: Path) -> None:
    fd, path = create_new(str(tmp_path))
    try:
        assert not os.get_inheritable(fd)
        os.write(fd, b"hello")
    finally:
        os.close(fd)
    assert Path(path).read_bytes() == b"hello"


def test_create_new_never_opens_an_existing_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "x000000000000").symlink_to(target)
    monkeypatch.setattr(os, "urandom", lambda n: bytes(n))  # the same name every time
    with pytest.raises(FileExistsError):
        create_new(tmp_path, "x")
    assert not target.exists()  # the symlink was not followed


def test_create_new_tries_other_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "000000000000").touch()
    draws = iter([bytes(6)] * (NAME_ATTEMPTS - 1) + [b"\x01" * 6])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    fd, path = create_new(tmp_path)
    os.close(fd)
    assert Path(path).name == "010101010101"


def test_write_atomically_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"old")
    write_atomically(target, b"new", mode=0o640)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
