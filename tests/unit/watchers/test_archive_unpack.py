"""Safe unpacking, SHA256SUMS verification and the swap that keeps the old version on failure,
on hand-built tarballs."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from steward.watchers.archive_unpack import (
    ArchiveError,
    Installed,
    Layout,
    install,
    installed,
    swap,
    unpack,
    verify_tree,
)
from tests.support.tarballs import Entry, app, sha256, tarball

LIMIT = 1 << 20


def archive_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "a.tgz"
    path.write_bytes(data)
    return path


def test_a_good_archive_unpacks_regular_files_and_directories(tmp_path: Path) -> None:
    data = tarball(
        Entry("./", tarfile.DIRTYPE, mode=0o755),
        Entry("./app/", tarfile.DIRTYPE, mode=0o500),
        Entry("./app/run.sh", content=b"#!/bin/sh\n", mode=0o4755),
        Entry("app/sub/deep.txt", content=b"deep"),
    )
    into = tmp_path / "out"
    into.mkdir()
    unpack(archive_file(tmp_path, data), into, LIMIT)
    assert (into / "app" / "run.sh").read_bytes() == b"#!/bin/sh\n"
    assert (into / "app" / "run.sh").stat().st_mode & 0o7777 == 0o755  # no setuid
    assert (into / "app").stat().st_mode & 0o777 == 0o700  # always owner-writable
    assert (into / "app" / "sub" / "deep.txt").read_text() == "deep"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        (Entry("../x", content=b"x"), "refused member '../x': path leaves the archive"),
        (Entry("app/../../x", content=b"x"), "path leaves the archive"),
        (Entry("/etc/x", content=b"x"), "refused member '/etc/x': absolute path"),
        (Entry("app/l", tarfile.SYMTYPE, link="/etc"), "a symbolic link (to '/etc')"),
        (Entry("app/h", tarfile.LNKTYPE, link="app/f"), "a hard link (to 'app/f')"),
        (Entry("app/dev", tarfile.CHRTYPE), "refused member 'app/dev': a device"),
        (Entry("app/blk", tarfile.BLKTYPE), "a device"),
        (Entry("app/fifo", tarfile.FIFOTYPE), "refused member 'app/fifo': a fifo"),
    ],
)
def test_unsafe_members_refuse_the_archive(tmp_path: Path, entry: Entry, why: str) -> None:
    data = tarball(Entry("app/f", content=b"f"), entry)
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(ArchiveError, match="refused member") as caught:
        unpack(archive_file(tmp_path, data), into, LIMIT)
    assert why in str(caught.value)
    assert not (tmp_path / "x").exists() and not (into / "app" / "l").exists()


def test_not_a_gzip_tarball_and_too_large(tmp_path: Path) -> None:
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(ArchiveError, match="not a valid gzip tar archive"):
        unpack(archive_file(tmp_path, b"hello"), into, LIMIT)
    big = tarball(Entry("a", content=b"0" * 2000), Entry("b", content=b"0" * 2000))
    with pytest.raises(ArchiveError, match="unpacks to more than 3000 bytes"):
        unpack(archive_file(tmp_path, big), into, 3000)


def test_sha256sums_verification(tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "a.txt").write_text("a")
    sums = f"{sha256(b'a')}  a.txt\n".encode()
    (root / "SHA256SUMS").write_bytes(sums)
    verify_tree(root, "SHA256SUMS", sha256(sums))
    with pytest.raises(ArchiveError, match=r"SHA256SUMS checksum mismatch: got \w{64}, want 00"):
        verify_tree(root, "SHA256SUMS", "00")
    (root / "a.txt").write_text("tampered")
    with pytest.raises(ArchiveError, match=r"files do not verify: a\.txt"):
        verify_tree(root, "SHA256SUMS", sha256(sums))
    (root / "a.txt").unlink()
    with pytest.raises(ArchiveError, match=r"a.txt \(missing\)"):
        verify_tree(root, "SHA256SUMS", sha256(sums))
    evil = f"{sha256(b'a')}  ../a.txt\n".encode()
    (root / "SHA256SUMS").write_bytes(evil)
    with pytest.raises(ArchiveError, match=r"refused '\.\./a\.txt': path leaves the archive"):
        verify_tree(root, "SHA256SUMS", sha256(evil))


def layout(tmp_path: Path, sums_checksum: str) -> Layout:
    return Layout(tmp_path / "machines", "app", "SHA256SUMS", sums_checksum)


def test_install_then_installed_then_tampering(tmp_path: Path) -> None:
    v1 = app("app", {"machine.yaml": b"v1"})
    where = layout(tmp_path, v1.sums_checksum)
    assert installed(where)[0] is Installed.MISSING_CREATES
    install(archive_file(tmp_path, v1.data), where, LIMIT)
    assert (where.destination / "machine.yaml").read_bytes() == b"v1"
    assert installed(where)[0] is Installed.VERIFIED
    assert [p.name for p in where.target.iterdir()] == ["app"]  # no work dirs left behind
    (where.destination / "machine.yaml").write_bytes(b"edited")
    assert installed(where)[0] is Installed.VERIFY_FAILED
    (where.destination / "SHA256SUMS").unlink()
    assert installed(where)[0] is Installed.MISSING_CHECKSUMS


def test_a_failed_update_keeps_the_old_version(tmp_path: Path) -> None:
    v1 = app("app", {"machine.yaml": b"v1"})
    where = layout(tmp_path, v1.sums_checksum)
    install(archive_file(tmp_path, v1.data), where, LIMIT)
    bad = [
        app("app", {"machine.yaml": b"v2"}, Entry("app/link", tarfile.SYMTYPE, link="/")),
        app("other", {"machine.yaml": b"v2"}),  # does not create 'app'
        app("app", {"machine.yaml": b"v2"}),  # its SHA256SUMS has another checksum
    ]
    for archive in bad:
        with pytest.raises(ArchiveError):
            install(archive_file(tmp_path, archive.data), where, LIMIT)
        assert (where.destination / "machine.yaml").read_bytes() == b"v1"
        assert [p.name for p in where.target.iterdir()] == ["app"]
    v2 = app("app", {"machine.yaml": b"v2"})
    install(archive_file(tmp_path, v2.data), layout(tmp_path, v2.sums_checksum), LIMIT)
    assert (where.destination / "machine.yaml").read_bytes() == b"v2"


def test_swap_puts_the_old_directory_back_when_the_new_cannot_move_in(tmp_path: Path) -> None:
    destination = tmp_path / "app"
    destination.mkdir()
    (destination / "old").write_text("old")
    with pytest.raises(OSError):
        swap(tmp_path / "does-not-exist", destination)
    assert (destination / "old").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["app"]
