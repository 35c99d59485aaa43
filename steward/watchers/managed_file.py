"""A file whose content a file watcher manages (Choria's ``contents``, ``owner``, ``group``,
``mode``): rendered from templates over the node's facts and the machine's data at each
check, and written again — atomically, through a temporary file in the same directory and a
rename — when it is missing, when something else changed it, when its mode differs or when
its content does. Blocking: run it in a thread.
"""

from __future__ import annotations

import grp
import hashlib
import pwd
from dataclasses import dataclass
from pathlib import Path

from steward.files import write_atomically


@dataclass(frozen=True)
class Wanted:
    content: bytes
    mode: int  # permission bits
    owner: str  # a user name or uid; "" with group "": keep the daemon's
    group: str


@dataclass(frozen=True)
class Outcome:
    written: bool  # False: the file already was as wanted
    reason: str  # why it was written ("missing", "changed", "mode", "content"), or ""
    mtime_ns: int  # of the file as it is now


def parse_mode(text: str) -> int:
    """``0644``, ``644`` or ``0o644``: always octal, unlike Go's ParseUint of Choria. ValueError."""
    digits = text.strip().removeprefix("0o")
    if not digits or len(digits) > 5 or any(c not in "01234567" for c in digits):
        raise ValueError(f"invalid mode {text!r}: use octal digits such as 0644")
    mode = int(digits, 8)
    if mode > 0o7777:
        raise ValueError(f"invalid mode {text!r}: at most 07777")
    return mode


def ensure(path: Path, wanted: Wanted, known_mtime_ns: int | None) -> Outcome:
    """Make ``path`` hold ``wanted``; OSError or LookupError (no such user/group) if it cannot."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return _write(path, wanted, "missing")
    if known_mtime_ns is not None and st.st_mtime_ns > known_mtime_ns:
        return _write(path, wanted, "changed")
    if st.st_mode & 0o7777 != wanted.mode:
        return _write(path, wanted, "mode")
    if hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(wanted.content).digest():
        return _write(path, wanted, "content")
    return Outcome(False, "", st.st_mtime_ns)


def _write(path: Path, wanted: Wanted, reason: str) -> Outcome:
    uid, gid = _ids(wanted.owner, wanted.group)
    write_atomically(
        path, wanted.content, mode=wanted.mode, uid=uid, gid=gid, prefix=".steward-file-"
    )
    return Outcome(True, reason, path.stat().st_mtime_ns)


def _ids(owner: str, group: str) -> tuple[int, int]:
    uid = -1 if not owner else int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
    gid = -1 if not group else int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid
