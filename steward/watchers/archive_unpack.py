"""The archive watcher's pure, blocking half: check what is installed, unpack a downloaded
tarball safely, verify it against its SHA256SUMS file and swap it into place. Run it in a
thread; every failure is an ``ArchiveError`` whose message is one line naming the culprit.

Safe unpacking: only regular files and directories; a symlink, hard link, device, fifo, an
absolute name or one with a ``..`` component refuses the whole archive. Files are written
with ``O_NOFOLLOW`` under a fresh private directory, without setuid/setgid/sticky bits and
with the daemon's ownership, and the total unpacked size is capped.

The swap: the archive is unpacked into a hidden temporary directory inside ``target`` (so the
machines loader ignores it and the renames stay on one filesystem); only once ``creates``
exists in it and verifies, the current ``target/creates`` is renamed aside, the new one
renamed into its place, and the old one removed. If the second rename fails the old one is
renamed back: a failed update leaves the previous version untouched.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20
WORK_PREFIX = ".steward-archive-"  # hidden: the machines loader ignores it
OLD_PREFIX = ".steward-replaced-"
_SUMS_LINE = re.compile(r"^([a-z0-9]+)\s+(\S.+)$")  # Choria's sumsMatcherRe


class ArchiveError(Exception):
    """Why an archive was not installed (or no longer verifies): one line."""


class Installed(StrEnum):
    """What ``target/creates`` holds now (Choria's state names)."""

    VERIFIED = "verified"
    MISSING_CREATES = "no_creates"
    MISSING_CHECKSUMS = "no_checksums"
    VERIFY_FAILED = "verify_failed"


@dataclass(frozen=True)
class Layout:
    target: Path  # absolute
    creates: str  # one path component
    verify: str  # the SHA256SUMS file inside creates; "" for none
    verify_checksum: str  # its sha256 (rendered); "" when verify is ""

    @property
    def destination(self) -> Path:
        return self.target / self.creates


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def same_sum(got: str, want: str) -> bool:
    return got.strip().lower() == want.strip().lower()


def member_problem(name: str) -> str | None:
    """Why a path inside the archive (or a SHA256SUMS entry) is refused, or None."""
    if not name or name.startswith("/"):
        return "absolute path" if name else "empty name"
    if ".." in PurePosixPath(name).parts:
        return "path leaves the archive"
    return None


def installed(layout: Layout) -> tuple[Installed, str]:
    """What is installed now, and why it does not verify (Choria's verifyCreates)."""
    dest = layout.destination
    if not dest.is_dir() or dest.is_symlink():
        return Installed.MISSING_CREATES, f"{dest} does not exist"
    if not layout.verify:
        return Installed.VERIFIED, f"{dest} exists"
    if not (dest / layout.verify).is_file():
        return Installed.MISSING_CHECKSUMS, f"{layout.verify} does not exist in {dest}"
    try:
        verify_tree(dest, layout.verify, layout.verify_checksum)
    except ArchiveError as exc:
        return Installed.VERIFY_FAILED, str(exc)
    except OSError as exc:
        return Installed.VERIFY_FAILED, f"{layout.verify}: {exc.strerror or exc}"
    return Installed.VERIFIED, f"{dest} verified by {layout.verify}"


def verify_tree(root: Path, sums_name: str, sums_checksum: str) -> None:
    """Every file ``root/sums_name`` lists has its sum, and the list itself has
    ``sums_checksum``; ArchiveError naming the first files that do not."""
    sums_file = root / sums_name
    if sums_file.is_symlink() or not sums_file.is_file():
        raise ArchiveError(f"checksums file {sums_name} does not exist in the archive")
    got = sha256_file(sums_file)
    if not same_sum(got, sums_checksum):
        raise ArchiveError(f"{sums_name} checksum mismatch: got {got}, want {sums_checksum}")
    failed: list[str] = []
    for number, line in enumerate(sums_file.read_text(errors="replace").splitlines(), 1):
        if not line:
            continue
        match = _SUMS_LINE.match(line)
        if match is None:
            raise ArchiveError(f"{sums_name}: malformed line {number}")
        want, name = match.groups()
        if name == sums_name:
            continue
        problem = member_problem(name)
        if problem is not None:
            raise ArchiveError(f"{sums_name}: line {number}: refused {name!r}: {problem}")
        path = root / name
        if path.is_symlink() or not path.is_file():
            failed.append(f"{name} (missing)")
        elif not same_sum(sha256_file(path), want):
            failed.append(name)
    if failed:
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        raise ArchiveError(f"{sums_name}: files do not verify: {', '.join(failed[:3])}{more}")


def unpack(archive: Path, into: Path, max_bytes: int) -> None:
    """Unpack the gzip tarball ``archive`` into the existing empty directory ``into``."""
    total = 0
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                _refuse_unsafe(member)
                path = into.joinpath(*PurePosixPath(member.name).parts)
                if member.isdir():
                    path.mkdir(mode=0o700, parents=True, exist_ok=True)
                    path.chmod((member.mode & 0o777) | 0o700)
                    continue
                total += member.size
                if total > max_bytes:
                    raise ArchiveError(f"archive unpacks to more than {max_bytes} bytes")
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                _write(path, source, (member.mode & 0o777) | 0o600)
    except (tarfile.TarError, zlib.error, EOFError, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"not a valid gzip tar archive: {exc}") from exc
    except OSError as exc:
        raise ArchiveError(f"cannot unpack: {exc}") from exc


def _refuse_unsafe(member: tarfile.TarInfo) -> None:
    name = member.name
    problem = member_problem(name.removeprefix("./") if name != "./" else ".")
    if problem is None and not (member.isreg() or member.isdir()):
        problem = _kind(member)
    if problem is not None:
        raise ArchiveError(f"refused member {name!r}: {problem}")


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a fifo"
    return f"not a regular file or directory (type {member.type!r})"


def _write(path: Path, source: object, mode: int) -> None:
    read = source.read  # type: ignore[attr-defined]
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        while chunk := read(CHUNK):
            f.write(chunk)
        os.fchmod(f.fileno(), mode)


def install(archive: Path, layout: Layout, max_bytes: int) -> None:
    """Unpack ``archive`` beside ``target/creates``, verify it, swap it in."""
    layout.target.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=layout.target))
    try:
        unpack(archive, work, max_bytes)
        new = work / layout.creates
        if new.is_symlink() or not new.is_dir():
            raise ArchiveError(f"the archive does not create the directory {layout.creates!r}")
        if layout.verify:
            verify_tree(new, layout.verify, layout.verify_checksum)
        swap(new, layout.destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def swap(new: Path, destination: Path) -> None:
    """Put the directory ``new`` at ``destination``; the old one is removed only once the new
    one is in place, and put back if that fails."""
    if not os.path.lexists(destination):
        new.rename(destination)
        return
    aside = Path(tempfile.mkdtemp(prefix=OLD_PREFIX, dir=destination.parent))
    old = aside / destination.name
    try:
        destination.rename(old)
        try:
            new.rename(destination)
        except OSError:
            old.rename(destination)
            raise
    finally:
        if os.path.lexists(old) and not os.path.lexists(destination):
            old.rename(destination)  # never leave nothing in place
        _remove(aside)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)  # unpacked directories are always owner-writable
