"""Archives for managed machines, as Choria's archive watcher checks them: a ``.tar.gz`` whose
top directory is the machine's name and holds a ``SHA256SUMS`` of its files; the entry's
``checksum`` is the archive's sha256 and ``verify_checksum`` the SHA256SUMS file's."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Packed:
    name: str
    archive: Path
    checksum: str
    verify_checksum: str


def pack_machine(directory: Path, out_dir: Path) -> Packed:
    """Write ``<out_dir>/<name>.tar.gz`` for the machine in ``directory`` (blocking)."""
    name = directory.name
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    sums = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(directory)}\n" for p in files
    ).encode()
    archive = out_dir / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for p in files:
            tar.add(p, arcname=f"{name}/{p.relative_to(directory)}", recursive=False)
        info = tarfile.TarInfo(f"{name}/SHA256SUMS")
        info.size, info.mode = len(sums), 0o644
        tar.addfile(info, io.BytesIO(sums))
    return Packed(
        name,
        archive,
        hashlib.sha256(archive.read_bytes()).hexdigest(),
        hashlib.sha256(sums).hexdigest(),
    )
