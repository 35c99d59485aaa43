"""The daemon as a child subreaper: no command's descendant outlives it, no zombie piles up.

``become_subreaper`` sets PR_SET_CHILD_SUBREAPER, so a process that escaped a command's
process group (``setsid``) and lost its parent is reparented to the daemon instead of init.
``Reaper`` then looks at the daemon's children every ``interval``: when one has exited
(``waitid`` without reaping it), an orphan that has exited is reaped (``waitpid`` on that pid
only; finding the orphans walks /proc, so it is done only then). The children the watchers'
commands started are never touched — ``run_process`` waits for those (the daemon's
``ProcessTable``). A stopping machine kills the orphans its own commands left
(``MachineProcesses.end``); the reaper reaps them like any other. On ``stop`` every orphan
still running is killed with its whole tree and reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import sys
import time
from collections.abc import Iterator

from steward.processes import ProcessTable, ProcStat, kill_tree, process_table

log = logging.getLogger("steward.daemon")

PR_SET_CHILD_SUBREAPER = 36
REAP_INTERVAL = 1.0  # seconds between two looks for exited orphans
STOP_TIMEOUT = 5.0  # seconds to wait for killed orphans to exit


@contextlib.contextmanager
def pidfd_child_watcher() -> Iterator[bool]:
    """On Python 3.11, wait for asyncio's subprocesses with pidfds on the running loop
    (the watchers' commands do so by themselves: ``steward.processes.run``).

    3.11's default child watcher starts a thread per child (to block in waitpid); pidfds
    (Linux 5.3+) make a child's exit an event on the loop instead: no thread per spawn.
    3.12+ does this by itself. Yields whether it is in use; restores the default after.
    asyncio's child watcher is one per process: daemons sharing a process (tests) share it,
    and the last one out restores the default.
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        yield False
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an old kernel, or a seccomp filter: keep the thread per child
        yield False
        return
    current = asyncio.get_child_watcher()
    if isinstance(current, _SharedPidfdWatcher) and current.users:
        watcher = current
    else:
        watcher = _SharedPidfdWatcher(previous=current)
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)
    watcher.users += 1
    try:
        yield True
    finally:
        watcher.users -= 1
        if not watcher.users:
            asyncio.set_child_watcher(watcher.previous)
            watcher.close()


class _SharedPidfdWatcher(asyncio.PidfdChildWatcher):
    """The pidfd watcher, with who installed it over what."""

    def __init__(self, previous: asyncio.AbstractChildWatcher) -> None:
        super().__init__()
        self.previous = previous
        self.users = 0


def exited_child() -> bool:
    """Whether some child of this process has exited and waits to be reaped: one waitid
    that leaves it waitable (``WNOWAIT``) for whoever waits for it."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # no children at all
        return False


def become_subreaper(on: bool = True) -> bool:
    """Make this process the reaper of its orphaned descendants (``on``), or stop being it.
    False if the OS refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if not ok:
        log.warning("cannot set the child subreaper flag: %s", os.strerror(ctypes.get_errno()))
    return bool(ok)


class Reaper:
    """Reaps the orphans reparented to this process; kills the ones left at stop."""

    def __init__(self, table: ProcessTable, interval: float = REAP_INTERVAL) -> None:
        self.table = table
        self.interval = interval
        self.reaped = 0
        self.killed = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not become_subreaper():
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="reaper")

    async def stop(self) -> None:
        """Kill every orphan still running (and its descendants), then reap them."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            orphans = await asyncio.to_thread(self._orphans)
            disowned = self.table.disowned  # exec `disown`: they outlive the daemon
            orphans = [o for o in orphans if o.sid not in disowned or o.state == "Z"]
            running = [o.pid for o in orphans if o.state not in ("Z", "X")]
            for pid in running:
                self.killed += len(kill_tree(pid))
            self._reap(orphans)
            if not orphans or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        if self.killed:
            log.info("killed %d leftover command processes", self.killed)
        # no longer this process's to adopt: a process that outlives the daemon in it (a test
        # run's other daemons and servers) must not be taken for a command's orphan
        become_subreaper(False)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if exited_child():  # else nothing to reap: no walk of /proc (every process's stat)
                self._reap(await asyncio.to_thread(self._orphans))

    @staticmethod
    def _orphans() -> list[ProcStat]:
        me = os.getpid()
        return [s for s in process_table().values() if s.ppid == me]

    def _reap(self, candidates: list[ProcStat]) -> None:
        """waitpid() the exited orphans among ``candidates``; on the loop, like spawns are."""
        if self.table.spawning:
            return  # a child being spawned is not in the table yet: look again later
        for stat in candidates:
            if stat.state != "Z" or stat.pid in self.table.waiting:
                continue
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(stat.pid, os.WNOHANG)[0] == stat.pid:
                    self.reaped += 1
