"""Which processes the daemon's watchers started, and for which machine.

``ProcessTable`` is the daemon's: it knows the children ``run_process`` is waiting for (and
spawns in progress), so the daemon's reaper (``steward.daemon.reaper``) never takes an exit
status ``run_process`` waits for, and which machine instance ran each command.
``MachineProcesses`` is one machine's view of it, handed to its watchers through their
context: every command of that machine runs through it, tagged with the instance
(``STEWARD_MACHINE_INSTANCE``), and ``end()`` ends every process those commands left behind
when the machine stops — adopted orphans included (the daemon is their subreaper), another
machine's never (``steward.processes.owners``).

Machines that stop together (a daemon stopping, a reload) share one walk of /proc: ``end``
calls that arrive while a sweep runs are served by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from steward.processes.command import ProcessRun
from steward.processes.owners import INSTANCE_VAR, kill_owned
from steward.processes.run import run_disowned, run_process

log = logging.getLogger("steward.processes")

END_TIMEOUT = 5.0  # seconds one sweep may take before the machine's stop goes on without it
SETTLE = 0.05  # seconds between two looks while killed processes exit


class ProcessTable:
    """The children of this daemon that ``run_process`` waits for, spawns in progress, and the
    instance each command ran for."""

    def __init__(self, end_timeout: float = END_TIMEOUT) -> None:
        self.waiting: set[int] = set()
        self.disowned: set[int] = set()  # disowned commands' pids, i.e. their session ids
        self.spawning = 0
        # a command's pid (its session and group id) -> the instance that ran it; kept while
        # the command runs or its process group has members, so a member's owner is known
        self.commands: dict[int, str] = {}
        self.end_timeout = end_timeout
        self.ended = 0  # processes killed because their machine stopped
        self.end_failures = 0  # sweeps that failed or ran out of time
        self._lingering: set[int] = set()  # exited commands whose group may still have members
        self._exits_since_prune = 0
        self._prune_after = 1
        self._ran: set[str] = set()  # instances that ran a command and have not ended
        self._pending: dict[str, asyncio.Future[int]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Around a spawn: while it runs, a new child exists that is not in ``waiting`` yet."""
        self.spawning += 1
        try:
            yield
        finally:
            self.spawning -= 1

    def disown(self, pid: int) -> None:
        """``pid`` runs disowned: its own thread waits for it, and nothing kills it or its
        session: it carries no instance tag and is no recorded command (so ``end`` never
        attributes it), and the reaper leaves ``disowned`` sessions alone at stop."""
        self.waiting.add(pid)
        self.disowned.add(pid)

    def disowned_exited(self, pid: int) -> None:
        """Called from the waiting thread: set operations only."""
        self.waiting.discard(pid)
        # the session id stays in ``disowned``: what the command left in its session is
        # disowned too, and a session id is not reused while the session has members

    def started(self, pid: int, instance: str) -> None:
        """A command of ``instance`` runs as ``pid``; ``run_process`` waits for it."""
        self.waiting.add(pid)
        self.commands[pid] = instance  # a reused pid names the newest command
        self._ran.add(instance)
        self._lingering.discard(pid)

    def exited(self, pid: int) -> None:
        """``run_process`` has reaped command ``pid``; its group is checked now and then until
        empty."""
        self.waiting.discard(pid)
        self._lingering.add(pid)
        self._exits_since_prune += 1
        # a check costs one kill(0) per lingering group; doing it after as many exits as
        # groups survived the last one keeps it O(1) per exit
        if self._exits_since_prune >= self._prune_after:
            self._prune()

    def _prune(self) -> None:
        for pid in list(self._lingering):
            if not _group_has_members(pid):
                self._lingering.discard(pid)
                if pid not in self.waiting:
                    self.commands.pop(pid, None)
        self._exits_since_prune = 0
        self._prune_after = max(1, len(self._lingering))

    def for_machine(self, machine: str, instance: str) -> MachineProcesses:
        return MachineProcesses(self, machine, instance)

    async def end(self, instance: str) -> int:
        """Kill every process ``instance``'s commands left running; how many were killed.

        Bounded by ``end_timeout`` (per sweep); a failure is logged and counted, not raised.
        An instance that never ran a command (timers, files, docker …) has nothing to end:
        no walk of /proc.
        """
        if instance not in self._ran:
            return 0
        loop = asyncio.get_running_loop()
        pending = self._pending.get(instance)
        if pending is None:
            pending = self._pending[instance] = loop.create_future()
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep_pending(), name="end-processes")
        return await asyncio.shield(pending)

    async def _sweep_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            counts: dict[str, int] = {}
            try:
                counts = await self._sweep(set(batch))
            finally:  # cancelled too: whoever waits is answered
                for instance, future in batch.items():
                    if not future.done():
                        future.set_result(counts.get(instance, 0))

    async def _sweep(self, instances: set[str]) -> dict[str, int]:
        """Walk and kill until a walk finds nothing new to kill, within ``end_timeout``."""
        killed: dict[int, str] = {}
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.end_timeout):
                while True:
                    found = await asyncio.to_thread(
                        kill_owned,
                        instances,
                        os.getpid(),
                        dict(self.commands),
                        frozenset(self.waiting),
                    )
                    new = found.keys() - killed.keys()
                    if not new:
                        break
                    killed.update((pid, found[pid]) for pid in new)
                    await asyncio.sleep(SETTLE)  # let them exit, then look again
        except TimeoutError:
            self.end_failures += 1
            log.warning(
                "processes left by stopped machines still running after %.1fs",
                time.monotonic() - started,
                extra={"killed": len(killed)},
            )
        except Exception:
            self.end_failures += 1
            log.exception("cannot end the processes left by stopped machines")
        self._ran -= instances
        for pid, instance in list(self.commands.items()):
            if instance in instances and pid not in self.waiting:
                del self.commands[pid]
                self._lingering.discard(pid)
        self.ended += len(killed)
        counts: dict[str, int] = {}
        for instance in killed.values():
            counts[instance] = counts.get(instance, 0) + 1
        return counts


class MachineProcesses:
    """The commands one machine's watchers run."""

    __slots__ = ("instance", "machine", "table")

    def __init__(self, table: ProcessTable, machine: str, instance: str) -> None:
        self.table = table
        self.machine = machine
        self.instance = instance

    async def run(
        self, argv: tuple[str, ...], cwd: Path, env: dict[str, str], time_limit: float
    ) -> ProcessRun:
        # set last: a watcher's `environment` cannot take a command away from its machine
        tagged = {**env, INSTANCE_VAR: self.instance}
        return await run_process(
            argv, cwd, tagged, time_limit, table=self.table, instance=self.instance
        )

    async def run_disowned(
        self, argv: tuple[str, ...], cwd: Path, env: dict[str, str]
    ) -> ProcessRun:
        """Run argv disowned: never killed by steward (exec ``disown``); not tagged with
        the instance, so ``end()`` leaves it and what it starts alone."""
        return await run_disowned(argv, cwd, env, table=self.table)

    async def end(self) -> int:
        """End every process this machine's commands left running; how many were killed.

        Call it once the watchers are closed (no command of this machine runs any more).
        Never raises (but for cancellation): a failure is logged and counted.
        """
        try:
            killed = await self.table.end(self.instance)
        except Exception:
            self.table.end_failures += 1
            log.exception("cannot end the processes of machine %s", self.machine)
            return 0
        if killed:
            log.info(
                "killed %d processes machine %s left running",
                killed,
                self.machine,
                extra={"machine": self.machine, "instance": self.instance},
            )
        return killed


def _group_has_members(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member runs as another user
        return True
    return True
