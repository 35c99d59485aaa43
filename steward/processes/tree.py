"""The process table as /proc shows it, and killing a whole process tree.

A command may escape its process group (``setsid``), so killing the group is not enough:
``kill_tree`` walks /proc for every process whose parent chain leads back to the command (or
that shares its group or session), stops them all so none can fork again, then kills them.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
FREEZE_ROUNDS = 5  # walks of /proc to catch processes forked while the tree is being stopped


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # R, S, D, Z, T, …
    ppid: int
    pgid: int
    sid: int


def read_stat(pid: int) -> ProcStat | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces or ')': split at the last one
    fields = text.rsplit(")", 1)[1].split()
    return ProcStat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]))


def process_table() -> dict[int, ProcStat]:
    table = {}
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                table[stat.pid] = stat
    return table


def descendants(root: int, table: dict[int, ProcStat] | None = None) -> set[int]:
    """Every live process below ``root``, or in its group or session, and theirs (not root)."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    todo = [root]
    todo += [s.pid for s in table.values() if root in (s.pgid, s.sid)]
    found: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    found.discard(root)
    return {p for p in found if p in table and table[p].state not in ("Z", "X")}


def kill_tree(root: int) -> set[int]:
    """SIGKILL ``root``, its group, and every descendant, escaped or not. Returns the pids.

    The tree is stopped (SIGSTOP) first, walk after walk, so nothing forks while it is being
    killed; then every stopped process is killed at once.
    """
    _signal(root, signal.SIGSTOP)
    frozen = freeze(lambda table: descendants(root, table))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signal.SIGKILL)
    kill_all((root, *frozen))
    return frozen | {root}


def freeze(select: Callable[[dict[int, ProcStat]], Collection[int]]) -> set[int]:
    """SIGSTOP the processes ``select`` picks from the process table, walk after walk (at most
    FREEZE_ROUNDS), until a walk finds none that is not stopped yet. Returns them all."""
    frozen: set[int] = set()
    for _ in range(FREEZE_ROUNDS):
        new = set(select(process_table())) - frozen
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        frozen |= new
    return frozen


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
