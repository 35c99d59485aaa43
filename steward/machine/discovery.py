"""Where machines live in a directory.

``<dir>/<name>/machine.yaml`` is a machine whose scripts sit beside it; ``<dir>/<name>.yaml``
is a machine whose scripts resolve against ``<dir>``. Hidden entries, ``*.tmp``, ``*-temp``
and editor swap/backup files are never machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MACHINE_FILE = "machine.yaml"
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class MachineSource:
    path: Path  # the definition file
    directory: Path  # the machine's working directory


def ignored(name: str) -> bool:
    return (
        name.startswith((".", "#"))
        or name.endswith(("~", ".tmp", "-temp", ".swp", ".swx", ".swo", ".bak", "#"))
        or name == "4913"  # vim's write test file
    )


def discover(machines_dir: Path) -> list[MachineSource]:
    """Every machine definition in ``machines_dir``, sorted by path. Raises OSError."""
    out: list[MachineSource] = []
    for entry in sorted(machines_dir.iterdir()):
        if ignored(entry.name):
            continue
        if entry.is_dir():
            candidate = entry / MACHINE_FILE
            if candidate.is_file():
                out.append(MachineSource(candidate, entry))
        elif entry.suffix in SUFFIXES and entry.is_file():
            out.append(MachineSource(entry, machines_dir))
    return out


def sources_for(path: Path) -> list[MachineSource]:
    """What ``steward validate PATH`` means: a file, a machine directory, or a machines dir."""
    if path.is_dir():
        if (path / MACHINE_FILE).is_file():
            return [MachineSource(path / MACHINE_FILE, path)]
        return discover(path)
    return [MachineSource(path, path.parent)]
