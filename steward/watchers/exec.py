"""exec: run a command; exit 0 is success, anything else (or a timeout) is failure.

The command is split with shlex and run without a shell, in the machine's directory, in its
own process group, with a minimal environment. On timeout or cancellation the whole process
group is killed. Captured output is capped. With ``parse_as_data`` the command's stdout must
be a JSON object, which is merged into the machine's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from steward.machine.source import Fields
from steward.watchers.base import MachineHandle, Outcome, Watcher, WatcherResult
from steward.watchers.processes import STARTED, kill_tree

TYPE = "exec"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTPUT_CAP = 64 * 1024  # bytes kept per stream; the rest is read and discarded
PAYLOAD_OUTPUT = 1024  # characters of output carried in the watcher's state
DRAIN_GRACE = 1.0  # seconds to finish reading pipes a leftover child still holds open
REAP_TIMEOUT = 5.0  # seconds to wait for a killed process group's leader to exit


@dataclass(frozen=True)
class ExecProperties:
    command: str
    argv: tuple[str, ...]
    timeout: float = 10.0
    environment: tuple[tuple[str, str], ...] = ()
    parse_as_data: bool = False
    suppress_success_announce: bool = False
    gather_initial_state: bool = False

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        command, argv = fields.command_line("command") or ("", ())
        timeout = fields.duration("timeout", minimum=0.001, minimum_text="1ms")
        props = cls(
            command=command,
            argv=argv,
            timeout=10.0 if timeout is None else timeout,
            environment=fields.assignments("environment"),
            parse_as_data=fields.boolean("parse_as_data", False),
            suppress_success_announce=fields.boolean("suppress_success_announce", False),
            gather_initial_state=fields.boolean("gather_initial_state", False),
        )
        fields.finish(" in exec properties")
        return props


class ExecWatcher(Watcher):
    TYPE = TYPE
    Properties = ExecProperties

    @property
    def props(self) -> ExecProperties:
        p = self.spec.properties
        assert isinstance(p, ExecProperties)
        return p

    def gathers_initial_state(self) -> bool:
        return self.props.gather_initial_state

    def announces(self, result: WatcherResult) -> bool:
        return not (self.props.suppress_success_announce and result.outcome is Outcome.SUCCESS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._data_file = DataFile(f"steward-data-{self.machine.name}-{self.name}-")

    def _environment(self, data_file: str) -> dict[str, str]:
        env = minimal_environment(self.machine, self.name)
        env["WATCHER_DATA"] = data_file
        env.update(self.props.environment)
        return env

    async def check(self) -> WatcherResult:
        props = self.props
        previous = self.last_result.outcome.value if self.last_result else None
        base_payload: dict[str, Any] = {
            "command": props.command,
            "previous_outcome": previous,
            "previous_run_time": self.last_duration,
        }
        env = self._environment(self._data_file.update(self.machine.data_snapshot()))
        program = resolve_program(props.argv[0], self.machine.directory, env["PATH"])
        if program is None:
            return WatcherResult(
                Outcome.ERROR,
                f"command not found: {props.argv[0]}",
                payload={**base_payload, "exit_code": None},
            )
        run = await run_process(
            (program, *props.argv[1:]), self.machine.directory, env, props.timeout
        )
        return self._result(run, base_payload)

    async def close(self) -> None:
        await super().close()
        self._data_file.remove()

    def _result(self, run: ProcessRun, payload: dict[str, Any]) -> WatcherResult:
        payload = {
            **payload,
            "exit_code": run.exit_code,
            "timed_out": run.timed_out,
            "stdout": run.stdout[:PAYLOAD_OUTPUT],
            "stderr": run.stderr[:PAYLOAD_OUTPUT],
        }
        if run.error:
            return WatcherResult(Outcome.ERROR, run.error, payload=payload)
        if run.timed_out:
            detail = f"timed out after {self.props.timeout:g}s; process group killed"
            return WatcherResult(Outcome.FAILURE, detail, payload=payload)
        if run.exit_code != 0:
            detail = f"exit code {run.exit_code}" + _first_line(run.stderr or run.stdout)
            return WatcherResult(Outcome.FAILURE, detail, payload=payload)
        if not self.props.parse_as_data:
            return WatcherResult(Outcome.SUCCESS, "exit code 0", payload=payload)
        try:
            data = json.loads(run.stdout)
        except ValueError as exc:
            return WatcherResult(
                Outcome.FAILURE, f"parse_as_data: stdout is not JSON: {exc}", payload=payload
            )
        if not isinstance(data, dict):
            return WatcherResult(
                Outcome.FAILURE, "parse_as_data: stdout is not a JSON object", payload=payload
            )
        return WatcherResult(Outcome.SUCCESS, "exit code 0", data=data, payload=payload)


def minimal_environment(machine: MachineHandle, watcher: str) -> dict[str, str]:
    """The variables every command a watcher runs gets (and nothing of the daemon's)."""
    return {
        "PATH": f"{machine.directory}:{DEFAULT_PATH}",
        "MACHINE_NAME": machine.name,
        "MACHINE_STATE": machine.state,
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


@dataclass(frozen=True)
class ProcessRun:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    error: str = ""


async def run_process(
    argv: tuple[str, ...], cwd: Path, env: dict[str, str], time_limit: float
) -> ProcessRun:
    """Run argv in its own process group; kill the group on timeout or cancellation.

    The exit is taken from the process itself, not from its pipes closing, so a background
    child that keeps stdout open does not hold the watcher up.
    """
    loop = asyncio.get_running_loop()
    try:
        with STARTED.start():  # the daemon's reaper leaves this child to asyncio
            transport, capture = await _spawn(loop, argv, cwd, env)
    except OSError as exc:
        return ProcessRun(None, "", "", error=f"cannot run {argv[0]}: {exc.strerror or exc}")
    pid = transport.get_pid()
    STARTED.pids.add(pid)
    capture.exited.add_done_callback(lambda _: STARTED.pids.discard(pid))
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


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return f": {line[:200]}" if line else ""


class DataFile:
    """The JSON file with the machine's data a command finds at ``$WATCHER_DATA``.

    One file per watcher for its lifetime (created with mkstemp on first use, removed on
    close), written again only when the data changed or something changed the file since
    (its inode, size and mtime are checked before each run): a run costs one stat instead of
    a new temp file and an unlink. The rare write is a few hundred bytes, done on the loop so
    that no thread can still be writing when ``remove`` runs.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.path: str | None = None
        self._written: bytes | None = None
        self._stat: tuple[int, int, int] | None = None

    def update(self, data: dict[str, Any]) -> str:
        """The file's path, holding ``data``."""
        content = json.dumps(data, sort_keys=True).encode()
        if self.path is None or content != self._written or self._stat != self._current():
            self._write(content)
        assert self.path is not None
        return self.path

    def _current(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = Path(self.path).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _write(self, content: bytes) -> None:
        if self.path is None or self._current() is None:
            fd, self.path = tempfile.mkstemp(prefix=_safe(self._prefix), suffix=".json")
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        self._written = content
        self._stat = self._current()

    def remove(self) -> None:
        path, self.path = self.path, None
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:100]
