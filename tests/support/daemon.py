"""The end-to-end harness: the real daemon as a subprocess, driven only through the CLI.

``Daemon`` starts ``python -m steward run`` on a machines dir and a short state dir under
/tmp (a Unix socket path must stay under 108 bytes), sends it signals, and asks it things
through ``steward status --json`` and ``steward transition``. Every wait is a condition
polled until a deadline; a timeout says what was awaited, the last status, and the tail of
the daemon's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

POLL = 0.05  # seconds between two looks at a condition
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 30.0
# set in the daemon's environment: an exec child must never see it
PARENT_ONLY_VAR = "STEWARD_E2E_PARENT_ONLY"


class ConditionTimeout(AssertionError):
    pass


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{describe()}" if describe is not None else ""
            raise ConditionTimeout(f"timed out after {timeout:g}s waiting for {what}{extra}")
        time.sleep(POLL)


async def until(what: str, check: Callable[[], T | None], timeout: float = 20.0) -> T:
    """``wait_until`` for tests on the event loop: poll ``check`` (every 5 ms, yielding to the
    loop) until it returns something truthy, which is returned, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ConditionTimeout(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.005)


def base_env(config_file: Path) -> dict[str, str]:
    """The environment for every steward process: no inherited STEWARD_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
    env["STEWARD_CONFIG"] = str(config_file)  # an empty file: never /etc/steward/steward.yaml
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steward", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def write_atomic(path: Path, text: str) -> None:
    """Replace a file in one step, so a script reading it never sees it half written."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    tmp.replace(path)


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body).lstrip())
    path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # the state follows the parenthesised command name, which may itself hold spaces
    return text.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def kill_quietly(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class MachinesDir:
    """The daemon's machines directory, as the tests write it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, definition: str, scripts: Mapping[str, str] | None = None) -> Path:
        """``<dir>/<name>/machine.yaml`` with its scripts beside it; returns the machine dir."""
        directory = self.path / name
        directory.mkdir(exist_ok=True)
        (directory / "machine.yaml").write_text(textwrap.dedent(definition).lstrip())
        for script, body in (scripts or {}).items():
            write_script(directory / script, body)
        return directory

    def add_file(self, filename: str, definition: str) -> Path:
        """A bare ``<dir>/<filename>`` machine file (scripts resolve against the dir)."""
        path = self.path / filename
        path.write_text(textwrap.dedent(definition).lstrip())
        return path


class Daemon:
    """One ``steward run`` subprocess on one state dir; may be started again after a stop."""

    def __init__(
        self,
        machines_dir: Path,
        state_dir: Path,
        log_path: Path,
        env: Mapping[str, str],
        node: str = "e2e",
    ) -> None:
        self.node = node
        self.machines_dir = machines_dir
        self.state_dir = state_dir
        self.log_path = log_path
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.last_status: dict[str, Any] | None = None

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "steward.sock"

    @property
    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "steward",
            "run",
            "--machines",
            str(self.machines_dir),
            "--state-dir",
            str(self.state_dir),
            "--node",
            self.node,
            "--log-format",
            "json",
            "--metrics-listen",
            "127.0.0.1:0",  # a free port: daemons side by side never fight over 9464
        ]

    # process control ------------------------------------------------------------------------
    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (appending to the same log file)."""
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                self.argv,
                env={**self.env, PARENT_ONLY_VAR: "must-not-leak"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the daemon and wait until it has loaded its machines and answers."""
        assert not self.running, "daemon already running"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = self.spawn()

        def started() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited with {self.proc.returncode} while starting\n{self.log_tail()}"
                )
            return any(r.get("msg", "").startswith("steward started") for r in self.logs(offset))

        wait_until(started, timeout, "the daemon to start", self.log_tail)
        self.status()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait for the exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"daemon did not stop within {timeout:g}s of SIGTERM\n{self.log_tail()}"
            ) from None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def cleanup(self) -> None:
        """Teardown: whatever happened, no daemon survives the test."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # the CLI ---------------------------------------------------------------------------------
    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``steward ARGS…`` as a user would type it."""
        return run_cli(*args, env=self.env)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A client command pointed at this daemon's state dir."""
        return self.cli(*args, "--state-dir", str(self.state_dir))

    def status(self) -> dict[str, Any]:
        result = self.ctl("status", "--json")
        if result.returncode != 0:
            raise AssertionError(
                f"steward status failed ({result.returncode}): {result.stderr.strip()}\n"
                f"{self.log_tail()}"
            )
        data: dict[str, Any] = json.loads(result.stdout)
        self.last_status = data
        return data

    def machine(self, name: str, status: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        data = status if status is not None else self.status()
        for m in data["machines"]:
            if m["name"] == name:
                return dict(m)
        return None

    def transition(self, machine: str, name: str) -> dict[str, Any]:
        """Fire a transition that must succeed; returns the committed result."""
        result = self.ctl("transition", machine, name, "--json")
        assert result.returncode == 0, (
            f"transition {machine} {name} failed: {result.stderr.strip()}\n{self.log_tail()}"
        )
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def scrape(self) -> str:
        """The text of ``GET /metrics`` (the port the daemon bound, from ``steward status``)."""
        listen = self.status()["metrics"]["listen"]
        assert listen, f"the daemon serves no metrics\n{self.log_tail()}"
        with urllib.request.urlopen(f"http://{listen}/metrics", timeout=CLI_TIMEOUT) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text: str = response.read().decode()
            return text

    # waiting ---------------------------------------------------------------------------------
    def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], object],
        timeout: float = 10.0,
        what: str = "a condition on the daemon's status",
    ) -> dict[str, Any]:
        """Poll ``status`` until ``predicate(status)`` is truthy; return that status."""

        def check() -> dict[str, Any] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited with {self.proc.returncode} while waiting for {what}\n"
                    f"{self.log_tail()}"
                )
            status = self.status()
            return status if predicate(status) else None

        return wait_until(check, timeout, what, self.describe)

    def wait_machine(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], object],
        timeout: float = 10.0,
        what: str = "",
    ) -> dict[str, Any]:
        """Wait until machine ``name`` exists and ``predicate(machine)`` holds; return it."""

        def check(status: dict[str, Any]) -> bool:
            m = self.machine(name, status)
            return m is not None and bool(predicate(m))

        status = self.wait_for(check, timeout, f"machine {name}: {what or 'condition'}")
        machine = self.machine(name, status)
        assert machine is not None
        return machine

    def wait_state(self, name: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait_machine(name, lambda m: m["state"] == state, timeout, f"state {state}")

    # the log ---------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def logs(self, offset: int = 0) -> list[dict[str, Any]]:
        """The daemon's JSON log records (lines that are not JSON are skipped)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                raw = f.read().decode(errors="replace")
        except FileNotFoundError:
            return []
        records = []
        for line in raw.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def log_tail(self, lines: int = 40) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- daemon log ({self.log_path}), last {len(tail)} lines ---\n" + "\n".join(tail)

    def describe(self) -> str:
        last = json.dumps(self.last_status, indent=1) if self.last_status else "(none)"
        return f"--- last status ---\n{last}\n{self.log_tail()}"


def watcher(machine: Mapping[str, Any], name: str) -> dict[str, Any]:
    for w in machine["watchers"]:
        if w["name"] == name:
            return dict(w)
    raise AssertionError(f"machine {machine['name']} has no watcher {name}")
