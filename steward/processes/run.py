"""Running one command: spawned without a shell in its own process group, with a minimal
environment, its output capped, and its whole tree killed on timeout or cancellation.

Every watcher that runs a command (exec, health and nagios plugins, and later types) goes
through ``run_process``, usually by way of its machine's ``MachineProcesses``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from steward.processes.tree import kill_tree

if TYPE_CHECKING:
    from steward.processes.table import ProcessTable

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTPUT_CAP = 64 * 1024  # bytes kept per stream; the rest is read and discarded
DRAIN_GRACE = 1.0  # seconds to finish reading pipes a leftover child still holds open
REAP_TIMEOUT = 5.0  # seconds to wait for a killed process group's leader to exit


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
    return shutil.which(program, path=path)


def first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of ``text``, at most ``limit`` characters ("" if none)."""
    stripped = text.strip()
    return stripped.splitlines()[0][:limit] if stripped else ""


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
    pid (and the machine ``instance`` it runs for) while asyncio waits for it, so the
    daemon's reaper never takes its exit status.
    """
    loop = asyncio.get_running_loop()
    try:
        with table.starting():  # the daemon's reaper leaves this child to asyncio
            transport, capture = await _spawn(loop, argv, cwd, env)
    except OSError as exc:
        return ProcessRun(None, "", "", error=f"cannot run {argv[0]}: {exc.strerror or exc}")
    pid = transport.get_pid()
    table.started(pid, instance)
    capture.exited.add_done_callback(lambda _: table.exited(pid))
    timed_out = False
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the process exits, leaving a stopped watcher running
        try:
            async with asyncio.timeout(time_limit):
                await asyncio.shield(capture.exited)
        except TimeoutError:
            timed_out = True
            await _kill_group(pid)
            await capture.exited
        await asyncio.wait([capture.drained], timeout=DRAIN_GRACE)
    except asyncio.CancelledError:
        await _kill_group(pid)
        # reap it before going on, so a stopped watcher leaves no process behind
        await asyncio.wait([capture.exited], timeout=REAP_TIMEOUT)
        transport.close()
        raise
    code = transport.get_returncode()
    transport.close()
    return ProcessRun(
        code,
        bytes(capture.output[1]).decode("utf-8", "replace"),
        bytes(capture.output[2]).decode("utf-8", "replace"),
        timed_out=timed_out,
    )


async def _spawn(
    loop: asyncio.AbstractEventLoop, argv: tuple[str, ...], cwd: Path, env: dict[str, str]
) -> tuple[asyncio.SubprocessTransport, _Capture]:
    return await loop.subprocess_exec(
        lambda: _Capture(loop),
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


class _Capture(asyncio.SubprocessProtocol):
    """Keeps the first OUTPUT_CAP bytes of stdout and stderr; discards the rest as it comes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.output = {1: bytearray(), 2: bytearray()}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        kept = self.output.get(fd)
        if kept is None:
            return
        room = OUTPUT_CAP - len(kept)
        if room > 0:
            kept += data[:room] if isinstance(data, bytes) else data[:room].encode()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open and not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


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
