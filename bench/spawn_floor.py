#!/usr/bin/env python3
"""The floor of ``check_cpu.py``: a bare asyncio loop that spawns what steward's exec watcher
spawns, at the same rate, and does nothing else.

    python bench/spawn_floor.py MACHINES_DIR --machines N --interval SECONDS

runs until SIGTERM. Per machine ``m<i>`` of ``MACHINES_DIR`` one asyncio task runs
``asyncio.create_subprocess_exec("/bin/true")`` in that directory with stdin from /dev/null,
stdout and stderr piped and read to the end (``communicate``), ``start_new_session`` (its own
process group and session), the environment steward gives an exec command (``PATH`` with the
machine dir, ``MACHINE_NAME``, ``MACHINE_STATE``, ``MACHINE_WATCHER_NAME``, ``WATCHER_DATA``,
``WATCHER_FACTS``, ``STEWARD_MACHINE_INSTANCE``; no data file is written), under a 10 s
``asyncio.timeout``, then sleeps what is left of the interval (steward's schedule: the next
run starts an interval after this one started). The tasks start spread evenly over the first
interval, as steward's watchers are once every machine is loaded (in lockstep, 1,000 spawns
in one loop iteration would hold 4,000 pipe ends at once). A spawn that fails (``OSError``:
out of descriptors, say) is counted and tried again at the next interval, never ends a task.

On Python 3.11 it waits for its children with ``asyncio.PidfdChildWatcher``, as steward's
daemon does (3.12+ does so by default): 3.11's default watcher starts a thread per child,
which would raise the floor. At exit it prints ``spawn-floor: N spawn errors`` on stderr when
there were any.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # as run.py's
EXEC_TIMEOUT = 10.0


def pidfds_wanted() -> bool:
    """Whether to wait for children with pidfds on the loop, as steward's daemon does on
    3.11 (3.12+ does by itself). False where pidfds cannot be had (old kernel, seccomp)."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


def child_watcher_note() -> str:
    if pidfds_wanted():
        return "asyncio.PidfdChildWatcher (as steward's daemon on 3.11)"
    if sys.version_info >= (3, 12):
        return "asyncio's default (pidfds where the kernel has them)"
    return "asyncio's default (a thread per child)"


def environment(directory: Path) -> dict[str, str]:
    """What steward's exec watcher gives ``/bin/true`` (the same variables, same sizes)."""
    name = directory.name
    return {
        "PATH": f"{directory}:{DEFAULT_PATH}",
        "MACHINE_NAME": name,
        "MACHINE_STATE": "idle",
        "MACHINE_WATCHER_NAME": "probe",
        "WATCHER_DATA": f"/tmp/steward-data-{name}-probe-xxxxxxxx.json",
        "WATCHER_FACTS": f"/tmp/steward-facts-{name}-probe-xxxxxxxx.json",
        "STEWARD_MACHINE_INSTANCE": uuid.uuid4().hex,
    }


class Floor:
    def __init__(self, machines_dir: Path, count: int, interval: float) -> None:
        self.machines_dir = machines_dir
        self.count = count
        self.interval = interval
        self.errors = 0

    async def machine(self, index: int) -> None:
        """One machine's exec watcher, bare: spawn, capture, sleep, again."""
        loop = asyncio.get_running_loop()
        directory = self.machines_dir / f"m{index}"
        env = environment(directory)
        await asyncio.sleep(index * self.interval / self.count)
        while True:
            started = loop.time()
            try:
                proc = await asyncio.create_subprocess_exec(
                    "/bin/true",
                    cwd=directory,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError:
                self.errors += 1
            else:
                async with asyncio.timeout(EXEC_TIMEOUT):
                    await proc.communicate()
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        if pidfds_wanted():
            watcher = asyncio.PidfdChildWatcher()
            watcher.attach_loop(loop)
            asyncio.set_child_watcher(watcher)
        tasks = [loop.create_task(self.machine(i)) for i in range(self.count)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.errors:
            print(f"spawn-floor: {self.errors} spawn errors", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="spawn /bin/true per machine every interval")
    parser.add_argument("machines_dir", type=Path)
    parser.add_argument("--machines", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True, help="seconds")
    args = parser.parse_args(argv)
    asyncio.run(Floor(args.machines_dir, args.machines, args.interval).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
