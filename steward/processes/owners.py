"""Which machine instance a process belongs to, and ending every process of some instances.

Every command a machine's watchers run carries ``STEWARD_MACHINE_INSTANCE=<instance>`` in
its environment; its children inherit it, through ``setsid`` and double forks too, and
``/proc/<pid>/environ`` shows it. ``owners`` attributes each process below the daemon:

1. its own tag, if it has one;
2. else its parent's owner (a child of a machine's process is that machine's);
3. else the command whose session or process group it is a member of (not the leader: an id
   cannot be handed to a new process while its session or group has members, so a member's
   id still names the command recorded for it).

What none of these reaches — a process that cleared its environment and left its command's
session, then lost its parent — belongs to nobody here, and is left to the daemon's stop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from steward.processes.tree import PROC, ProcStat, freeze, kill_all

INSTANCE_VAR = "STEWARD_MACHINE_INSTANCE"
_TAG = INSTANCE_VAR.encode() + b"="


def instance_tag(pid: int) -> str | None:
    """The instance a process was started for, from its environment (None if unreadable)."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's process
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(_TAG):  # the first one, as getenv() sees it
            return entry[len(_TAG) :].decode("utf-8", "replace") or None
    return None


def owners(
    table: Mapping[int, ProcStat],
    root: int,
    tag_of: Callable[[int], str | None],
    commands: Mapping[int, str],
) -> dict[int, str]:
    """The instance each live process below ``root`` (by parent chain) belongs to, for the
    processes that can be attributed. ``commands`` maps a command's pid, which is its session
    and process group id, to the instance that ran it."""
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: dict[int, str] = {}
    seen = {root}
    todo: list[tuple[int, str | None]] = [(pid, None) for pid in children.get(root, ())]
    while todo:
        pid, inherited = todo.pop()
        stat = table[pid]
        if pid in seen or stat.state in ("Z", "X"):  # a zombie has no children left
            continue
        seen.add(pid)
        owner = tag_of(pid) or inherited or _by_command(stat, commands) or None
        if owner is not None:
            found[pid] = owner
        todo.extend((child, owner) for child in children.get(pid, ()))
    return found


def _by_command(stat: ProcStat, commands: Mapping[int, str]) -> str | None:
    if stat.sid != stat.pid and stat.sid in commands:
        return commands[stat.sid]
    if stat.pgid != stat.pid and stat.pgid in commands:
        return commands[stat.pgid]
    return None


def kill_owned(
    instances: Collection[str],
    root: int,
    commands: Mapping[int, str],
    spare: Collection[int] = (),
    tag_of: Callable[[int], str | None] = instance_tag,
) -> dict[int, str]:
    """SIGKILL every process below ``root`` that belongs to one of ``instances``, except the
    pids in ``spare`` (commands ``run_process`` still waits for). Blocking: walks /proc, so
    run it in a thread. The processes are stopped first, walk after walk, so none forks while
    they are being killed. Returns the pids killed and their instance."""
    tags: dict[int, str | None] = {}

    def cached_tag(pid: int) -> str | None:  # one environ read per process per call
        if pid not in tags:
            tags[pid] = tag_of(pid)
        return tags[pid]

    picked: dict[int, str] = {}

    def select(table: dict[int, ProcStat]) -> set[int]:
        for pid, owner in owners(table, root, cached_tag, commands).items():
            if owner in instances and pid not in spare:
                picked[pid] = owner
        return set(picked)

    kill_all(freeze(select))
    return picked
