"""Writing a file so that readers see the old content or the new, never a part: a temporary
file in the same directory, its mode (and owner) set, written, fsynced, renamed over the
target. Blocking: run it in a thread.

``create_new`` makes the temporary file as ``tempfile.mkstemp`` does (a fresh random name,
``O_EXCL``, mode 0600, no symlink followed) without importing tempfile, which imports shutil
and with it bz2 and lzma (~0.6 MiB of the daemon's RSS; issue 19)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

NAME_ATTEMPTS = 100  # tempfile.TMP_MAX
NEW_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_new(directory: Path | str, prefix: str = "", suffix: str = "") -> tuple[int, str]:
    """A new file ``<prefix><random><suffix>`` in ``directory``, mode 0600, opened for reading
    and writing: its descriptor and absolute path (``tempfile.mkstemp``'s contract)."""
    for _ in range(NAME_ATTEMPTS):
        name = f"{prefix}{os.urandom(6).hex()}{suffix}"
        path = str(Path(directory).absolute() / name)
        try:
            return os.open(path, NEW_FILE_FLAGS, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused file name", str(directory))


def write_atomically(
    path: Path,
    content: bytes,
    *,
    mode: int,
    uid: int = -1,
    gid: int = -1,
    prefix: str = ".steward-",
) -> None:
    """Replace ``path`` with ``content`` (``mode``; owner ``uid``/``gid`` unless -1). The
    temporary file is hidden (``prefix``) and removed if anything fails."""
    fd, tmp = create_new(path.parent, prefix)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(content)
            if uid != -1 or gid != -1:
                os.fchown(f.fileno(), uid, gid)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
