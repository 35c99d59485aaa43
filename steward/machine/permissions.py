"""Who may define what a node runs: machine files must not be writable by others.

A machine runs commands as the daemon's user, so its file and directory must be owned by
root or by that user and not be writable by group or others. ``--insecure-permissions``
turns this off for development.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from steward.errors import Problem


def stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def permission_problems(
    path: Path, display: str, directory: Path | None, file_stat: os.stat_result | None
) -> list[Problem]:
    """Problems with ``path`` (and ``directory``, for a ``<name>/machine.yaml`` machine).

    ``file_stat`` is the caller's stat of ``path`` (None if it failed: reading the file then
    reports the problem), so one stat serves this check and the loader's change detection.
    """
    problems: list[Problem] = []
    me = os.geteuid()
    targets = [(path, file_stat, "machine file")]
    if directory is not None:
        targets.append((directory, stat_or_none(directory), "machine directory"))
    for target, st, what in targets:
        if st is None:
            continue  # reading the file reports it
        if st.st_uid not in (0, me):
            problems.append(
                Problem(
                    display,
                    0,
                    0,
                    "",
                    f"{what} {target} is owned by uid {st.st_uid}, neither root nor the "
                    f"daemon's user (uid {me}); fix: chown {me} {target}",
                )
            )
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            problems.append(
                Problem(
                    display,
                    0,
                    0,
                    "",
                    f"{what} {target} is writable by group or others "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); fix: chmod go-w {target}",
                )
            )
    return problems
