"""Hand-built gzip tarballs for the archive watcher's tests, good and hostile."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    kind: bytes = tarfile.REGTYPE  # tarfile's type flag
    content: bytes = b""
    link: str = ""
    mode: int = 0o644


def tarball(*entries: Entry) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.mode = e.mode
            info.linkname = e.link
            if e.kind == tarfile.REGTYPE:
                info.size = len(e.content)
                tar.addfile(info, io.BytesIO(e.content))
            else:
                tar.addfile(info)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class App:
    """A machine-like archive: ``<creates>/`` with files and their SHA256SUMS."""

    data: bytes
    checksum: str  # of the tarball
    sums_checksum: str  # of SHA256SUMS


def app(creates: str, files: dict[str, bytes], *extra: Entry) -> App:
    sums = "".join(f"{sha256(body)}  {name}\n" for name, body in sorted(files.items())).encode()
    entries = [Entry(f"{creates}/", tarfile.DIRTYPE, mode=0o755)]
    entries += [Entry(f"{creates}/{name}", content=body) for name, body in files.items()]
    entries += [Entry(f"{creates}/SHA256SUMS", content=sums), *extra]
    data = tarball(*entries)
    return App(data, sha256(data), sha256(sums))
