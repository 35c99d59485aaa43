"""inotify on the machines directory and on each directory directly in it, for hot reload.

A definition is ``<machines>/<name>.yaml`` or ``<machines>/<name>/machine.yaml``
(``watch.DefinitionFilter``), so two levels are all that is watched: the machines directory
(entries created, deleted, renamed, written, changing mode) and each directory in it (the same
for their entries; a directory that appears is watched from then on, and the rescan its
appearance wakes reads whatever it already holds). Deeper files (a machine's scripts and
data) never change a definition and are not watched.

Through libc (ctypes: the reaper has loaded it already for the subreaper flag) rather than
watchfiles' Rust notifier, whose shared library, thread and blocking worker thread cost
~1 MiB of the daemon's RSS (issue 19). The descriptor is non-blocking and read on the event
loop (``loop.add_reader``); ``read`` drains what the kernel has.

A full kernel queue (``IN_Q_OVERFLOW``: 16,384 events unread) loses events; it is reported as
a change of the machines directory itself, which wakes a rescan (``DefinitionFilter``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from enum import IntEnum
from pathlib import Path


class Change(IntEnum):
    """What happened to a path (watchfiles' ``Change``, whose numbers these are)."""

    added = 1
    modified = 2
    deleted = 3


IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_ONLYDIR
)
ADDED = IN_CREATE | IN_MOVED_TO
DELETED = IN_DELETE | IN_MOVED_FROM
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
READ_SIZE = 64 * 1024
# a directory in the machines directory that cannot be watched (not ours to read, gone, or
# over fs.inotify.max_user_watches): skipped, the backstop rescan still sees its definition;
# the machines directory itself must be watchable
SKIPPABLE = frozenset({errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.ENOSPC})


class Inotify:
    """The watches on ``root`` and its directories; ``read()`` the changes since last time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd: int = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise _os_error(None)
        self._paths: dict[int, Path] = {}  # watch descriptor -> the directory it watches
        try:
            self._watch(root, required=True)
            with os.scandir(root) as entries:
                for entry in entries:
                    if entry.is_dir():
                        self._watch(Path(entry.path))
        except BaseException:
            self.close()
            raise

    def read(self) -> list[tuple[Change, str]]:
        """Every change the kernel has queued, in order (none: empty; never blocks)."""
        changes: list[tuple[Change, str]] = []
        while True:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return changes
            offset = 0
            while offset < len(data):
                wd, mask, _, length = EVENT.unpack_from(data, offset)
                start = offset + EVENT.size
                name = data[start : start + length].rstrip(b"\0")
                offset = start + length
                change = self._change(wd, mask, name)
                if change is not None:
                    changes.append(change)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._paths.clear()

    def _change(self, wd: int, mask: int, name: bytes) -> tuple[Change, str] | None:
        if mask & IN_Q_OVERFLOW:
            return Change.modified, str(self.root)
        if mask & IN_IGNORED:
            self._paths.pop(wd, None)  # its directory is gone (or moved away)
            return None
        directory = self._paths.get(wd)
        if directory is None or not name:  # a stale watch, or the directory's own event
            return None
        path = directory / os.fsdecode(name)
        if mask & ADDED:
            if mask & IN_ISDIR and directory == self.root:
                self._watch(path)
            return Change.added, str(path)
        if mask & DELETED:
            return Change.deleted, str(path)
        return Change.modified, str(path)

    def _watch(self, path: Path, *, required: bool = False) -> None:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), MASK)
        if wd < 0:
            error = _os_error(path)
            if required or error.errno not in SKIPPABLE:
                raise error
            return
        self._paths[wd] = path


def merge(batch: dict[str, Change], changes: list[tuple[Change, str]]) -> None:
    """One change per path in a batch, as watchfiles gives them: the last, except that a path
    added and then written stays added."""
    for change, path in changes:
        if not (change is Change.modified and batch.get(path) is Change.added):
            batch[path] = change


def _os_error(path: Path | None) -> OSError:
    code = ctypes.get_errno()
    if path is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), str(path))
