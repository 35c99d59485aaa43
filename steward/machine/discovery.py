"""Where machines live in a directory.

``<dir>/<name>/machine.yaml`` is a machine whose scripts sit beside it; ``<dir>/<name>.yaml``
is a machine whose scripts resolve against ``<dir>``. Hidden entries, ``*.tmp``, ``*-temp``
and editor swap/backup files are never machines.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MACHINE_FILE = "machine.yaml"
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class MachineSource:
    path: Path  # the definition file
    directory: Path  # the machine's working directory
    # the definition's stat, when finding it took one (the loader needs it: one stat, not two)
    stat: os.stat_result | None = field(default=None, compare=False)


def ignored(name: str) -> bool:
    return (
        name.startswith((".", "#"))
        or name.endswith(("~", ".tmp", "-temp", ".swp", ".swx", ".swo", ".bak", "#"))
        or name == "4913"  # vim's write test file
    )


def discover(machines_dir: Path) -> list[MachineSource]:
    """Every machine definition in ``machines_dir``, sorted by path. Raises OSError.

    One directory listing (which knows what is a directory without a stat) and one stat per
    machine directory's ``machine.yaml``: a rescan of 10,000 machines does this every minute.
    """
    with os.scandir(machines_dir) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    out: list[MachineSource] = []
    for entry in entries:
        if ignored(entry.name):
            continue
        path = machines_dir / entry.name
        if entry.is_dir():
            candidate = path / MACHINE_FILE
            try:
                st = candidate.stat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append(MachineSource(candidate, path, st))
        elif path.suffix in SUFFIXES and entry.is_file():
            out.append(MachineSource(path, machines_dir))
    return out


def sources_for(path: Path) -> list[MachineSource]:
    """What ``steward validate PATH`` means: a file, a machine directory, or a machines dir."""
    if path.is_dir():
        if (path / MACHINE_FILE).is_file():
            return [MachineSource(path / MACHINE_FILE, path)]
        return discover(path)
    return [MachineSource(path, path.parent)]
