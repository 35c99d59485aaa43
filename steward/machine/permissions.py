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


def permission_problems(path: Path, display: str, directory: Path | None) -> list[Problem]:
    """Problems with ``path`` (and ``directory``, for a ``<name>/machine.yaml`` machine)."""
    problems: list[Problem] = []
    me = os.geteuid()
    for target, what in ((path, "machine file"), (directory, "machine directory")):
        if target is None:
            continue
        try:
            st = target.stat()
        except OSError:
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
