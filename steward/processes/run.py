"""Running one command: spawned without a shell in its own process group, with a minimal
environment, its output capped, and its whole tree killed on timeout or cancellation.

Every watcher that runs a command (exec, health and nagios plugins, and later types) goes
through ``run_process``, usually by way of its machine's ``MachineProcesses``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

from steward.processes.command import ProcessRun
from steward.processes.tree import kill_tree

if TYPE_CHECKING:
    from steward.processes.table import ProcessTable

OUTPUT_CAP = 64 * 1024  # bytes kept per stream; the rest is read and discarded
DRAIN_GRACE = 1.0  # seconds to finish reading pipes a leftover child still holds open
REAP_TIMEOUT = 5.0  # seconds to wait for a killed process group's leader to exit


async def run_process(
    argv: tuple[str, ...],
    cwd: Path,
    env: dict[str, str],
    time_limit: float,
    *,
    table: ProcessTable,
    instance: str = "",
) -> ProcessRun:
    """Run argv in its own process group; kill the group on timeout or cancellation.

    The exit is taken from the process itself, not from its pipes closing, so a background
    child that keeps stdout open does not hold the watcher up. ``table`` learns the child's
    pid (and the machine ``instance`` it runs for) while it is waited for, so the daemon's
    reaper never takes its exit status.
    """
    loop = asyncio.get_running_loop()
    try:
        with table.starting():  # the daemon's reaper leaves this child to us
            child = _Child.spawn(loop, argv, cwd, env)
    except OSError as exc:
        return ProcessRun(None, "", "", error=f"cannot run {argv[0]}: {exc.strerror or exc}")
    pid = child.pid
    table.started(pid, instance)
    child.exited.add_done_callback(lambda _: table.exited(pid))
    timed_out = False
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the process exits, leaving a stopped watcher running
        try:
            async with asyncio.timeout(time_limit):
                await asyncio.shield(child.exited)
        except TimeoutError:
            timed_out = True
            await _kill_group(pid)
            await child.exited
        if not child.drained.done():  # mostly it is: the pipes close as it exits
            await asyncio.wait([child.drained], timeout=DRAIN_GRACE)
    except asyncio.CancelledError:
        await _kill_group(pid)
        # reap it before going on, so a stopped watcher leaves no process behind
        await asyncio.wait([child.exited], timeout=REAP_TIMEOUT)
        child.close()
        raise
    child.close()
    return ProcessRun(
        child.returncode,
        bytes(child.output[1]).decode("utf-8", "replace"),
        bytes(child.output[2]).decode("utf-8", "replace"),
        timed_out=timed_out,
    )


class _Child:
    """One spawned command, watched on the loop with no more than it needs: its two pipes
    read straight from their descriptors (the first OUTPUT_CAP bytes kept, the rest read and
    discarded), its exit seen through a pidfd (Linux 5.3+; else a thread that waits for it,
    as asyncio's default child watcher on 3.11 does).

    asyncio's subprocess transport does the same spawn (``subprocess.Popen``) but adds a
    transport per pipe, a protocol, a task to connect them and some twenty callbacks per
    run: ~0.08 ms of the daemon's CPU per check, about a sixth of its own share
    (bench/profiles/check_cpu.txt).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, popen: subprocess.Popen[bytes]) -> None:
        self.pid = popen.pid
        self.returncode: int | None = None
        self.output = {1: bytearray(), 2: bytearray()}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        self._popen = popen
        self._pipes: dict[int, IO[bytes]] = {}  # still open: 1 (stdout), 2 (stderr)
        self._pidfd: int | None = None

    @classmethod
    def spawn(
        cls,
        loop: asyncio.AbstractEventLoop,
        argv: tuple[str, ...],
        cwd: Path,
        env: dict[str, str],
    ) -> _Child:
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            start_new_session=True,
        )
        child = cls(loop, popen)
        for key, pipe in ((1, popen.stdout), (2, popen.stderr)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            child._pipes[key] = pipe
            loop.add_reader(pipe.fileno(), child._read, key)
        child._watch_exit()
        return child

    def _watch_exit(self) -> None:
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfds here: a thread waits for it
            threading.Thread(target=self._wait, name=f"wait-{self.pid}", daemon=True).start()
            return
        self._loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        """The pidfd is readable: the process has exited (on the loop)."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: asyncio says 255 too
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return  # not yet
        assert self._pidfd is not None
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self._exit(os.waitstatus_to_exitcode(status))

    def _wait(self) -> None:
        """Without pidfds, in a thread: wait for the exit, tell the loop."""
        try:
            _, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            code = 255
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self._loop.call_soon_threadsafe(self._exit, code)

    def _exit(self, code: int) -> None:
        self.returncode = self._popen.returncode = code
        if not self.exited.done():
            self.exited.set_result(None)

    def _read(self, key: int) -> None:
        pipe = self._pipes.get(key)
        if pipe is None:
            return
        try:
            data = os.read(pipe.fileno(), OUTPUT_CAP)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # a broken pipe ends the stream, as asyncio's transport does
        if data:
            kept = self.output[key]
            room = OUTPUT_CAP - len(kept)
            if room > 0:
                kept += data[:room]
            return
        self._close_pipe(key)
        if not self._pipes and not self.drained.done():
            self.drained.set_result(None)

    def _close_pipe(self, key: int) -> None:
        pipe = self._pipes.pop(key)
        self._loop.remove_reader(pipe.fileno())
        pipe.close()

    def close(self) -> None:
        """Stop reading; kill the process if it still runs (as asyncio's transport does);
        its exit is still collected when it comes."""
        for key in list(self._pipes):
            self._close_pipe(key)
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


async def _kill_group(pid: int) -> None:
    # the group and every descendant that escaped it (setsid). Walking /proc takes some ms,
    # so it runs in a thread; the tree is frozen first, so nothing forks meanwhile
    await asyncio.to_thread(kill_tree, pid)


async def run_disowned(
    argv: tuple[str, ...], cwd: Path, env: dict[str, str], *, table: ProcessTable
) -> ProcessRun:
    """Run argv disowned (Choria's exec ``disown``): in its own session, its output discarded,
    never killed — not on cancellation, not when its machine or the daemon stops — and waited
    for (for its exit code) only as long as the caller waits.

    A daemon thread waits for it (``waitpid``), so nothing of asyncio owns it: a cancelled
    caller leaves it running, and the daemon can exit while it runs. The table remembers it,
    so neither a stopping machine nor the daemon's reaper kills it or its session.
    """
    loop = asyncio.get_running_loop()
    try:
        with table.starting():
            proc = await asyncio.to_thread(
                subprocess.Popen,
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            table.disown(proc.pid)
    except OSError as exc:
        return ProcessRun(None, "", "", error=f"cannot run {argv[0]}: {exc.strerror or exc}")
    exited: asyncio.Future[int] = loop.create_future()

    def wait() -> None:
        code = proc.wait()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(_settle_exit, exited, code)
        table.disowned_exited(proc.pid)

    threading.Thread(target=wait, name=f"disowned-{proc.pid}", daemon=True).start()
    code = await asyncio.shield(exited)
    return ProcessRun(code, "", "")


def _settle_exit(future: asyncio.Future[int], code: int) -> None:
    if not future.done():
        future.set_result(code)
