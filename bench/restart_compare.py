#!/usr/bin/env python3
"""Restart, side by side: a killed process until it runs again, steward vs supervisord.

Both sides run for the whole run and are killed in turn (steward, supervisord, steward, …),
``--kills`` times each, so both see the same box:

- **steward**: the real daemon runs ``--containers`` keeper machines (``KEEPER_TEMPLATE`` in
  benchlib: a docker watcher with ``desired: running``, ``interval: 5m``, so only the engine's
  event stream makes it react). A kill is ``docker kill`` (the engine's kill API, SIGKILL) of
  one kept container. The watcher reports the drift (fail transition ``restart``), then starts
  the container again and reports success (``recovered``). Timed from just before the kill call:
  the ``restart`` transition event as a subscriber receives it (``GET /v1/events?follow=1`` on
  the control socket, read in a thread), and the container running again (``State.Running``
  with a new ``Pid``, polled every ``--poll-ms``). The engine's own ``State.StartedAt`` minus the
  kill's wall-clock time is recorded too. The containers are killed round-robin, each only
  after it has been up the watcher's ``STABLE`` seconds, so no crash-loop pause applies.
- **supervisord** (PyPI ``supervisor``, installed into ``bench/.tools/supervisor`` with pip
  when missing), in the foreground (``-n -c`` a private config, private Unix socket), one
  program ``/bin/sleep 3600`` with ``autorestart=true`` and supervisord's defaults for the rest
  (``autostart=true``, ``startsecs=1``, ``startretries=3``). A kill is SIGKILL to the program's
  pid, only once supervisord says it is RUNNING (up ``startsecs``: an exit before that would
  be a BACKOFF, supervisord's crash-loop pause). Timed from just before the kill until a new
  ``sleep`` child of supervisord shows in /proc (polled every ``--poll-ms``). /proc, not the
  XML-RPC API: a request on supervisord's socket wakes its select loop, which would reap the
  child and restart it sooner than it does on its own (its loop polls with a 1 s timeout;
  SIGCHLD only sets a flag, so the restart waits for the next turn of that loop).

Where steward's time goes, per kill, on this host's wall clock: the engine's own events
(``die``; ``network disconnect``, its cleanup after the death; ``network connect``, the start
beginning; ``start``) read back from the engine after the kill, and the transition event's
``time`` (when the daemon decided it, before the commit). The "engine floor" is what the
restart would cost were steward instant: kill -> cleanup done, plus connect -> start.

Targets: the transition event p99 ≤ 250 ms; steward's restart p50 ≤ 0.25x supervisord's.
Prints ``restart-event: …`` and ``restart: … PASS|MISS`` lines. A side that cannot run (no
Docker engine or image, supervisor cannot be installed) is a loud ``NOT RUN (reason)`` and exit
code 2; 1 if the benchmark itself failed; else 0, PASS or MISS.

    .venv/bin/python bench/restart_compare.py --quick --no-record   # smoke, ~30 s
    .venv/bin/python bench/restart_compare.py                       # 20 kills each, recorded
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any, TypeVar

from benchlib import (
    NOT_RUN_EXIT,
    BenchError,
    Daemon,
    ToolMissing,
    UnixHTTPConnection,
    add_output_args,
    container_running,
    docker_connect,
    keep_or_remove,
    loadavg,
    log_tail,
    ms,
    not_run,
    percentile,
    positive_int,
    print_lines,
    record,
    remove_bench_containers,
    results_section,
    run_main,
    short_state_dir,
    summary_line,
    tool_venv,
    write_keepers,
)

from steward.watchers.docker import STABLE

T = TypeVar("T")

TARGET_EVENT_P99 = 0.250  # seconds
TARGET_RATIO = 0.25  # steward's restart p50 / supervisord's
SUPERVISOR = "supervisor>=4.2,<5"
PROGRAM = "sleeper"
SLEEP = "/bin/sleep"
SETTLE = 0.2  # seconds of quiet after each measured kill
# seconds between asking supervisord (XML-RPC) whether the program runs and killing it: a
# request wakes supervisord's loop, which would then reap at once; idle, it waits in select
QUIET = 0.5
WAIT = 30.0  # seconds any one awaited thing may take
SUPERVISORD_CONF = """\
; a private supervisord for bench/restart_compare.py
[unix_http_server]
file={dir}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{dir}/supervisor.sock

; autorestart=true; the rest at supervisord's defaults: autostart=true, startsecs=1,
; startretries=3, stopsignal=TERM
[program:{program}]
command={sleep} 3600
autorestart=true
"""


# arguments -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Kill -> running again: steward's docker watcher vs supervisord, alternating."
    )
    parser.add_argument("--kills", type=positive_int, default=None, help="kills per side (20)")
    parser.add_argument(
        "--containers",
        type=positive_int,
        default=5,
        help="kept containers, killed in turn (5; at most --kills)",
    )
    parser.add_argument(
        "--poll-ms", type=positive_int, default=5, help="poll interval in ms, both sides (5)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 kills per side")
    add_output_args(parser, "keep the state dirs, the daemon's and supervisord's logs")
    args = parser.parse_args(argv)
    if args.kills is None:
        args.kills = 3 if args.quick else 20
    args.containers = min(args.containers, args.kills)
    args.poll = args.poll_ms / 1000
    return args


# figures ---------------------------------------------------------------------------------------
def _dist(values: list[float]) -> str:
    if not values:
        return "-"
    qs = " / ".join(ms(percentile(values, q), 1) for q in (50, 90, 99))
    return f"{qs} (min {ms(min(values), 1)}, mean {ms(fmean(values), 1)}, max {ms(max(values), 1)})"


@dataclass
class Figures:
    kills: int
    containers: int
    poll: float
    loadavg: str = "?"
    steward_not_run: str | None = None  # why the steward side did not run
    supervisord_not_run: str | None = None
    docker_version: str = "?"
    supervisor_version: str = "?"
    event: list[float] = field(default_factory=list)  # kill -> restart transition event
    steward_restart: list[float] = field(default_factory=list)  # kill -> running again (poll)
    steward_engine: list[float] = field(default_factory=list)  # kill -> engine's StartedAt
    steward_recovered: list[float] = field(default_factory=list)  # kill -> recovered event
    # where steward's time goes: the engine's own events (timeNano) and the transition
    # event's time (when the daemon decided it), all on this host's wall clock
    engine_die: list[float] = field(default_factory=list)  # kill call -> the engine's die
    die_to_decided: list[float] = field(default_factory=list)  # die -> restart decided
    decided_to_received: list[float] = field(default_factory=list)  # -> event received
    die_to_connect: list[float] = field(default_factory=list)  # die -> network connect
    connect_to_start: list[float] = field(default_factory=list)  # connect -> engine's start
    # what a restart costs in the engine alone, were steward instant: kill call -> the
    # engine's cleanup after the death done (network disconnect), plus the start itself
    floor: list[float] = field(default_factory=list)
    supervisord_restart: list[float] = field(default_factory=list)  # kill -> new sleep child

    @property
    def event_p99(self) -> float:
        return percentile(self.event, 99)

    @property
    def ratio(self) -> float:
        return percentile(self.steward_restart, 50) / percentile(self.supervisord_restart, 50)

    @property
    def floor_ratio(self) -> float:
        return percentile(self.floor, 50) / percentile(self.supervisord_restart, 50)

    def lines(self) -> list[tuple[str, str]]:
        rows = [
            ("kills", f"{self.kills} per side, alternating; {self.containers} kept containers"),
            ("poll interval (both sides)", ms(self.poll, 1)),
        ]
        if self.steward_not_run:
            rows.append(("steward (docker watcher)", f"NOT RUN ({self.steward_not_run})"))
        else:
            rows += [
                ("docker engine", self.docker_version),
                ("steward: kill -> restart transition event p50 / p90 / p99", _dist(self.event)),
                (
                    "steward: kill -> container running again p50 / p90 / p99",
                    _dist(self.steward_restart),
                ),
                ("steward: kill -> engine's StartedAt p50 / p90 / p99", _dist(self.steward_engine)),
                (
                    "steward: kill -> recovered transition event p50 / p90 / p99",
                    _dist(self.steward_recovered),
                ),
                ("breakdown: kill call -> engine's die event", _dist(self.engine_die)),
                (
                    "breakdown: die -> restart decided (steward: event stream, wake, inspect)",
                    _dist(self.die_to_decided),
                ),
                (
                    "breakdown: decided -> event received (steward: commit, publish, SSE)",
                    _dist(self.decided_to_received),
                ),
                (
                    "breakdown: die -> network connect (engine cleanup; steward's start call)",
                    _dist(self.die_to_connect),
                ),
                (
                    "breakdown: network connect -> engine's start event (the engine's start)",
                    _dist(self.connect_to_start),
                ),
                (
                    "engine floor: kill -> cleanup done + the start itself (steward instant)",
                    _dist(self.floor),
                ),
            ]
        if self.supervisord_not_run:
            rows.append(("supervisord", f"NOT RUN ({self.supervisord_not_run})"))
        else:
            rows += [
                ("supervisord", f"{self.supervisor_version} (autorestart=true, startsecs=1)"),
                (
                    "supervisord: SIGKILL -> new sleep child p50 / p90 / p99",
                    _dist(self.supervisord_restart),
                ),
            ]
        return rows

    def summaries(self) -> list[str]:
        """The scenario's lines: the event target, then the restart comparison."""
        if self.steward_not_run:
            event = f"restart-event: NOT RUN ({self.steward_not_run})"
        else:
            p99 = self.event_p99
            event = summary_line(
                "restart-event",
                f"kill -> transition event p99 {ms(p99, 1)} ({len(self.event)} kills)",
                f"p99 ≤ {ms(TARGET_EVENT_P99)}",
                f"{p99 / TARGET_EVENT_P99:.2f}",
                p99 <= TARGET_EVENT_P99,
            )
        why = self.steward_not_run or self.supervisord_not_run
        if why:
            side = "steward" if self.steward_not_run else "supervisord"
            restart = f"restart: NOT RUN ({side}: {why})"
        else:
            restart = summary_line(
                "restart",
                f"kill -> running again p50 steward {ms(percentile(self.steward_restart, 50))} "
                f"vs supervisord {ms(percentile(self.supervisord_restart, 50))} "
                f"(the engine alone: {ms(percentile(self.floor, 50))}, "
                f"ratio {self.floor_ratio:.2f})",
                f"steward p50 ≤ {TARGET_RATIO:g}x supervisord's",
                f"{self.ratio:.2f}",
                self.ratio <= TARGET_RATIO,
            )
        return [event, restart]

    @property
    def complete(self) -> bool:
        return not (self.steward_not_run or self.supervisord_not_run)


# helpers ---------------------------------------------------------------------------------------
def poll_until(check: Callable[[], T | None], timeout: float, every: float, what: str) -> T:
    """Call ``check`` every ``every`` s until it returns something; BenchError after
    ``timeout`` s (``what`` is the awaited event)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise BenchError(f"gave up after {timeout:.0f} s waiting until {what}")
        time.sleep(every)


def iso_time(text: str) -> float | None:
    """An ISO 8601 time (a CloudEvent's ``time``) as a Unix time; None if it is not one."""
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


_DOCKER_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


def docker_time(text: str) -> float | None:
    """The engine's RFC 3339 time (nanoseconds) as a Unix time; None if it is not one."""
    match = _DOCKER_TIME.match(text)
    if match is None:
        return None
    whole = dt.datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    return whole.timestamp() + float(f"0.{match[2] or 0}")


def engine_events(api: Any, container_id: str, since: float) -> dict[str, float]:
    """The engine's first event of each action on a container from ``since`` until now (Unix
    times from the events' ``timeNano``): its own (``die``, ``start``, …) and its network's
    (``network disconnect`` as the engine cleans up after the death, ``network connect``
    as a start begins)."""
    first: dict[str, float] = {}
    for event in api.events(
        since=f"{since - 1:.6f}",
        until=f"{time.time():.6f}",
        filters={"type": ["container", "network"]},
        decode=True,
    ):
        at = int(event.get("timeNano", 0)) / 1e9
        action = str(event.get("Action") or "")
        actor = event.get("Actor") or {}
        if event.get("Type") == "network":
            if (actor.get("Attributes") or {}).get("container") != container_id:
                continue
            action = f"network {action}"
        elif actor.get("ID") != container_id:
            continue
        if at >= since and action not in first:
            first[action] = at
    return first


class TransitionStream:
    """The daemon's transition events as a subscriber gets them: ``GET /v1/events?follow=1``
    on the control socket, read in a thread; each kept with its monotonic receive time."""

    def __init__(self, socket_path: Path) -> None:
        self._conn = UnixHTTPConnection(socket_path, timeout=10.0)
        # (received: monotonic, machine, transition, decided: the event's time, Unix)
        self._events: list[tuple[float, str, str, float | None]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        self._conn.request("GET", "/v1/events?follow=1&type=transition&recent=0")
        response = self._conn.getresponse()
        if response.status != 200:
            raise BenchError(f"GET /v1/events?follow=1 answered {response.status}")
        assert self._conn.sock is not None
        self._conn.sock.settimeout(None)  # an idle stream is fine: keepalives come every 15 s
        self._thread = threading.Thread(
            target=self._read, args=(response,), name="sse", daemon=True
        )
        self._thread.start()

    def _read(self, response: http.client.HTTPResponse) -> None:
        try:
            for raw in response:
                if raw.startswith(b"data: "):
                    received = time.monotonic()
                    event = json.loads(raw[6:])
                    data = event.get("data") or {}
                    machine, transition = str(data.get("machine")), str(data.get("transition"))
                    decided = iso_time(str(event.get("time", "")))
                    with self._lock:
                        self._events.append((received, machine, transition, decided))
        except (OSError, ValueError, http.client.HTTPException) as exc:
            self.error = str(exc) or type(exc).__name__
        else:
            self.error = "the event stream ended"

    def find(
        self, machine: str, transition: str, after: float
    ) -> tuple[float, float | None] | None:
        """The first ``transition`` of ``machine`` received after ``after``: when it came
        (monotonic) and when the daemon decided it (the event's ``time``, Unix); None if
        none came yet."""
        with self._lock:
            for received, m, t, decided in self._events:
                if received >= after and m == machine and t == transition:
                    return received, decided
        if self.error is not None:
            raise BenchError(f"the event stream broke: {self.error}")
        return None

    def close(self) -> None:
        if self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)  # ends the thread's read
        if self._thread is not None:
            self._thread.join(5)
        self._conn.close()


# supervisord -----------------------------------------------------------------------------------
class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's Unix socket."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection[1] is None:
            self._connection = host, UnixHTTPConnection(self._path, 10.0)
        return self._connection[1]


def new_child(ppid: int, before: set[str], comm: str) -> int | None:
    """A process not among ``before`` (pid names) whose parent is ``ppid`` and which runs
    ``comm`` (exec'd, so a fork that has not exec'd yet does not count); None if none."""
    for entry in os.scandir("/proc"):
        name = entry.name
        if not name.isdigit() or name in before:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        close = stat.rindex(")")
        fields = stat[close + 2 :].split()  # state, ppid, …
        if int(fields[1]) != ppid:
            before.add(name)  # not ours, and a pid does not change its parent to supervisord
        elif fields[0] != "Z" and stat[stat.index("(") + 1 : close] == comm:
            return int(name)
    return None


def proc_names() -> set[str]:
    return {e.name for e in os.scandir("/proc") if e.name.isdigit()}


class Supervisord:
    """supervisord in the foreground on a private config, with one program: ``sleep 3600``."""

    def __init__(self, exe: Path, workdir: Path) -> None:
        self.exe = exe
        self.dir = workdir
        self.conf = workdir / "supervisord.conf"
        self.log = workdir / "supervisord.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.rpc = xmlrpc.client.ServerProxy(
            "http://supervisord/RPC2", transport=_UnixTransport(workdir / "supervisor.sock")
        )

    def version(self) -> str:
        out = subprocess.run([str(self.exe), "--version"], capture_output=True, text=True)
        return f"supervisord {out.stdout.strip() or '?'}"

    def start(self) -> None:
        self.conf.write_text(SUPERVISORD_CONF.format(dir=self.dir, program=PROGRAM, sleep=SLEEP))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.exe), "-n", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.running_pid(WAIT)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def info(self) -> dict[str, Any] | None:
        """The program's ``getProcessInfo``; None while supervisord does not answer."""
        try:
            info = self.rpc.supervisor.getProcessInfo(PROGRAM)
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            return None
        return info if isinstance(info, dict) else None

    def running_pid(self, timeout: float) -> int:
        """Wait until the program is RUNNING (up ``startsecs``); its pid."""

        def running() -> int | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(
                    f"supervisord exited ({self.proc.returncode}); log:\n{log_tail(self.log)}"
                )
            info = self.info()
            return int(info["pid"]) if info and info.get("statename") == "RUNNING" else None

        return poll_until(running, timeout, 0.05, f"supervisord's {PROGRAM} was RUNNING")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# the sides -------------------------------------------------------------------------------------
class StewardSide:
    """The daemon on keeper machines, the engine, the event stream; one kill at a time."""

    def __init__(self, args: argparse.Namespace, figures: Figures) -> None:
        self.args = args
        self.figures = figures
        self.api = docker_connect()  # ToolMissing: no engine or no image
        figures.docker_version = f"docker {self.api.version().get('Version', '?')}"
        self.run_id = uuid.uuid4().hex[:12]
        self.machines_dir = Path(tempfile.mkdtemp(prefix="steward-restart-machines-"))
        self.state_dir = short_state_dir("sr-")
        self.daemon = Daemon(
            self.machines_dir,
            self.state_dir,
            self.state_dir / "daemon.log",
            extra_args=("--metrics-listen", "off"),
        )
        self.names = [f"keeper{i}" for i in range(args.containers)]
        self.containers: dict[str, str] = {}
        self.up_since: dict[str, float] = {}  # monotonic: when each container last started
        self.stream: TransitionStream | None = None
        self.turn = 0

    def start(self) -> None:
        self.containers = write_keepers(self.machines_dir, self.names, self.run_id)
        self.daemon.start()
        socket_path = self.state_dir / "steward.sock"
        self.stream = self._wait(lambda: self._connect(socket_path), "the control socket answered")
        for n in self.names:
            self._wait(lambda n=n: container_running(self.api, self.containers[n]), f"{n} ran")
            self.up_since[n] = time.monotonic()

    def _connect(self, socket_path: Path) -> TransitionStream | None:
        stream = TransitionStream(socket_path)
        try:
            stream.start()
        except (OSError, http.client.HTTPException):
            stream.close()
            return None
        return stream

    def _wait(self, check: Callable[[], T | None], what: str) -> T:
        def checked() -> T | None:
            if not self.daemon.alive():
                raise BenchError(f"the daemon exited before {what}")
            return check()

        try:
            return poll_until(checked, WAIT, self.args.poll, what)
        except BenchError as exc:
            raise self.daemon.failed(str(exc)) from None

    def kill_one(self) -> None:
        n = self.names[self.turn % len(self.names)]
        self.turn += 1
        container = self.containers[n]
        time.sleep(max(0.0, self.up_since[n] + STABLE + 0.5 - time.monotonic()))
        old = self._wait(lambda: container_running(self.api, container), f"{container} ran")
        container_id = self.api.inspect_container(container)["Id"]
        assert self.stream is not None
        stream = self.stream
        wall0, t0 = time.time(), time.monotonic()
        self.api.kill(container)
        event: tuple[float, float | None] | None = None
        running: tuple[float, tuple[int, str]] | None = None

        def both() -> bool | None:
            nonlocal event, running
            if event is None:
                event = stream.find(n, "restart", t0)
            if running is None:
                now = container_running(self.api, container)
                if now is not None and now[0] != old[0]:
                    running = time.monotonic(), now
            return True if event is not None and running is not None else None

        self._wait(both, f"{n} fired restart and {container} ran again")
        assert event is not None and running is not None
        recovered = self._wait(lambda: stream.find(n, "recovered", t0), f"{n} fired recovered")
        self.up_since[n] = running[0]
        f = self.figures
        f.event.append(event[0] - t0)
        f.steward_restart.append(running[0] - t0)
        f.steward_recovered.append(recovered[0] - t0)
        started = docker_time(running[1][1])
        if started is not None:
            f.steward_engine.append(started - wall0)
        engine = engine_events(self.api, container_id, wall0)
        die, connect = engine.get("die"), engine.get("network connect")
        decided = event[1]
        if die is not None:
            f.engine_die.append(die - wall0)
            if decided is not None:
                f.die_to_decided.append(decided - die)
            if connect is not None:
                f.die_to_connect.append(connect - die)
        if decided is not None:
            f.decided_to_received.append(wall0 + (event[0] - t0) - decided)
        if connect is not None and "start" in engine:
            f.connect_to_start.append(engine["start"] - connect)
            if "network disconnect" in engine:
                cleaned = engine["network disconnect"] - wall0
                f.floor.append(cleaned + engine["start"] - connect)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        with contextlib.suppress(BenchError):
            if self.daemon.alive():
                self.daemon.stop()
        self.daemon.close()
        remove_bench_containers(self.api, self.run_id)
        self.api.close()
        kept = f"steward state and log {self.state_dir}, machines {self.machines_dir}"
        keep_or_remove(self.args.keep, kept, self.machines_dir, self.state_dir)


class SupervisordSide:
    def __init__(self, args: argparse.Namespace, figures: Figures) -> None:
        self.args = args
        self.figures = figures
        exe = tool_venv("supervisor", SUPERVISOR, "supervisord")  # ToolMissing
        self.dir = short_state_dir("sv-")
        self.sv = Supervisord(exe, self.dir)
        figures.supervisor_version = self.sv.version()

    def start(self) -> None:
        self.sv.start()

    def kill_one(self) -> None:
        old = self.sv.running_pid(WAIT)
        time.sleep(QUIET)
        before = proc_names()
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        poll_until(
            lambda: new_child(self.sv.pid, before, Path(SLEEP).name),
            WAIT,
            self.args.poll,
            f"supervisord started {PROGRAM} again",
        )
        self.figures.supervisord_restart.append(time.monotonic() - t0)

    def close(self) -> None:
        self.sv.stop()
        keep_or_remove(self.args.keep, f"supervisord config and logs {self.dir}", self.dir)


# the run ---------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.kills, args.containers, args.poll, loadavg=loadavg())
    sides: list[StewardSide | SupervisordSide] = []
    try:
        try:
            sides.append(StewardSide(args, figures))
        except ToolMissing as exc:
            figures.steward_not_run = str(exc)
        try:
            sides.append(SupervisordSide(args, figures))
        except ToolMissing as exc:
            figures.supervisord_not_run = str(exc)
        for side in sides:
            side.start()
        print(
            f"{args.kills} kills per side, alternating: "
            + ", ".join(type(s).__name__.removesuffix("Side") for s in sides),
            flush=True,
        )
        for i in range(args.kills):
            for side in sides:
                side.kill_one()
                time.sleep(SETTLE)
            print(f"  round {i + 1}/{args.kills}", flush=True)
        return figures
    finally:
        for side in sides:
            side.close()


def section(figures: Figures) -> str:
    return results_section(
        f"restart_compare: {figures.kills} kills per side, steward vs supervisord",
        figures.lines(),
        "steward: keeper machines (docker watcher, desired running, interval 5m), `docker kill` "
        "-> the restart transition event (SSE on the control socket) and -> the container "
        "running again (new pid, polled); supervisord: `sleep` with autorestart=true, "
        "startsecs=1 (default), SIGKILL -> a new sleep child in /proc (polled); alternating, "
        "both running throughout",
        commit_note=f"; load average at start: {figures.loadavg}",
        footer="\n".join(f"`{line}`" for line in figures.summaries()),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(figures: Figures) -> int:
        print_lines(figures.lines())
        if not args.no_record:
            record(section(figures))
        for line in figures.summaries():
            if "NOT RUN" in line:
                scenario, _, reason = line.partition(": NOT RUN (")
                not_run(scenario, reason.removesuffix(")"))
            else:
                print(line)
        return 0 if figures.complete else NOT_RUN_EXIT

    return run_main("restart_compare", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
