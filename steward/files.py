"""Writing a file so that readers see the old content or the new, never a part: a temporary
file in the same directory, its mode (and owner) set, written, fsynced, renamed over the
target. Blocking: run it in a thread."""

from __future__ import annotations

import os
from pathlib import Path


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
    import tempfile  # ~2.5 ms (shutil, random): not for `steward validate`, which writes nothing

    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
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
