"""``steward events``: the local daemon's stream (SSE on its socket) and a fleet's (NATS).

The command runs as a user runs it, a subprocess whose stdout a reader thread collects line
by line, so the test sees each line as it is printed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.daemon import MachinesDir, run_cli, wait_until
from tests.support.events import (
    DEADLINE,
    PREFIX,
    StewardDaemon,
    data_of,
    make_daemon,
    parse,
    short_tmp_dir,
    toggle,
)
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

DOOR = """\
name: door
version: 1.0.0
initial_state: closed
transitions:
  - {name: open, from: [closed], destination: opened}
  - {name: close, from: [opened], destination: closed}
"""


class Command:
    """``steward ARGS…`` running in the background; its output lines as they come."""

    def __init__(self, daemon: StewardDaemon, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "steward", *args],
            env=daemon.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        assert hasattr(stream, "readline")
        for raw in iter(stream.readline, b""):
            into.append(raw.decode(errors="replace").rstrip("\n"))

    def wait_lines(self, predicate: Callable[[list[str]], object], what: str) -> list[str]:
        def check() -> list[str] | None:
            lines = list(self.stdout)
            if predicate(lines):
                return lines
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"steward events exited with {self.proc.returncode} while waiting for "
                    f"{what}; stderr: {self.stderr}"
                )
            return None

        return wait_until(
            check, DEADLINE, what, lambda: f"stdout: {self.stdout[-10:]}\nstderr: {self.stderr}"
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self._threads:
            t.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def machines(tmp_path: Path) -> MachinesDir:
    return MachinesDir(tmp_path / "machines")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = short_tmp_dir("sc-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
def commands() -> Iterator[Callable[..., Command]]:
    started: list[Command] = []

    def start(daemon: StewardDaemon, *args: str) -> Command:
        started.append(Command(daemon, *args))
        return started[-1]

    yield start
    for c in started:
        c.close()


def test_follow_prints_each_event_as_it_happens(
    tmp_path: Path,
    machines: MachinesDir,
    state_dir: Path,
    commands: Callable[..., Command],
) -> None:
    machines.add("door", DOOR)
    d = make_daemon(tmp_path, machines.path, state_dir)  # no NATS at all: local events only
    try:
        d.start()
        follow = commands(d, "events", "--follow", "--state-dir", str(state_dir))
        follow.wait_lines(
            lambda lines: any("door lifecycle started" in line for line in lines),
            "the recent events first",
        )
        d.transition("door", "open")
        follow.wait_lines(
            lambda lines: any("transition open: closed -> opened (seq 1)" in x for x in lines),
            "the first transition, while the command runs",
        )
        d.transition("door", "close")
        lines = follow.wait_lines(
            lambda lines: any("transition close: opened -> closed (seq 2)" in x for x in lines),
            "the second transition",
        )
        assert all(" e2e door " in line for line in lines), lines
        assert follow.proc.poll() is None, "--follow must keep running"
    finally:
        d.cleanup()


def test_nats_json_prints_cloudevents_for_one_machine_and_type(
    tmp_path: Path,
    nats_server: NatsServer,
    machines: MachinesDir,
    state_dir: Path,
    commands: Callable[..., Command],
) -> None:
    machines.add("blink", toggle("blink"))
    machines.add("other", toggle("other"))
    d = make_daemon(tmp_path, machines.path, state_dir, args=("--nats-server", nats_server.url))
    try:
        fleet = commands(
            d,
            "events",
            "--nats",
            nats_server.url,
            "--machine",
            "blink",
            "--type",
            "transition",
            "--json",
        )
        d.start()
        lines = fleet.wait_lines(lambda lines: len(lines) >= 10, "10 transitions of blink")
    finally:
        d.cleanup()
    subject = f"{PREFIX}.*.blink.transition"
    assert fleet.stderr[:1] == [f"subscribed to {subject} on {nats_server.url}"], fleet.stderr
    seqs = []
    for line in lines:
        assert json.loads(line)["specversion"] == "1.0"
        event = parse(line.encode())
        assert event.get_type() == "io.steward.machine.v1.transition", line
        assert event.get_subject() == "blink" and event.get_source() == "steward://e2e", line
        seqs.append(data_of(event)["seq"])
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def test_nats_unreachable_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "steward.yaml"
    config.write_text("")
    env = {"STEWARD_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    url = "nats://127.0.0.1:1"  # nothing listens on port 1
    result = run_cli("events", "--nats", url, env=env)
    assert result.returncode == 1, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("steward: error:")]
    assert len(errors) == 1, result.stderr
    assert "NATS" in errors[0] and url in errors[0], errors
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_nats_unreachable_prints_only_the_error(tmp_path: Path) -> None:
    config = tmp_path / "steward.yaml"
    config.write_text("")
    env = {"STEWARD_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    result = run_cli("events", "--nats", "nats://127.0.0.1:1", env=env)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
