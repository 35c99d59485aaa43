"""What a command is before it runs and after: its program looked up, its minimal
environment, and its result. No event loop here: ``steward validate`` imports the watcher
types that use these without importing asyncio (``steward.processes.run`` runs them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ProcessRun:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    error: str = ""


def minimal_environment(directory: Path, machine: str, state: str, watcher: str) -> dict[str, str]:
    """The variables every command a watcher runs gets (and nothing of the daemon's)."""
    return {
        "PATH": f"{directory}:{DEFAULT_PATH}",
        "MACHINE_NAME": machine,
        "MACHINE_STATE": state,
        "MACHINE_WATCHER_NAME": watcher,
    }


def resolve_program(program: str, directory: Path, path: str) -> str | None:
    """A path resolves against the machine dir; a bare name is looked up on ``path``."""
    if "/" in program:
        full = Path(program)
        if not full.is_absolute():
            full = directory / full
        return str(full)
    return which(program, path)


def which(program: str, path: str) -> str | None:
    """``shutil.which(program, path=path)`` on POSIX: the first executable regular file (or
    symlink to one) named ``program`` in a ``path`` directory (an empty entry: relative to
    the working directory, as shutil's). Not shutil's, which imports bz2 and lzma (~0.5 MiB
    of the daemon's RSS)."""
    if not path:
        return None
    seen: set[str] = set()
    for directory in path.split(os.pathsep):
        if os.path.normcase(directory) in seen:
            continue
        seen.add(os.path.normcase(directory))
        candidate = os.path.join(directory, program)  # noqa: PTH118 (shutil's string, unnormalised)
        if os.access(candidate, os.X_OK) and not Path(candidate).is_dir():
            return candidate
    return None


def first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of ``text``, at most ``limit`` characters ("" if none)."""
    stripped = text.strip()
    return stripped.splitlines()[0][:limit] if stripped else ""
