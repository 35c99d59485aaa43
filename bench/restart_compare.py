#!/usr/bin/env python3
"""Docker keep-running, side by side: a crashed container until it runs again, steward's
keeper vs the engine's own ``--restart always``, on the same image and command.

Both sides run on one engine for the whole run, and their containers are crashed in turn
(a round is one crash a side, engine first in odd rounds, steward first in even ones),
``--kills`` times each, so both see the same box:

- **engine**: ``--containers`` containers of ``DOCKER_IMAGE`` (benchlib: the busybox-static
  import of ``make docker-setup``) running ``KEEPER_COMMAND`` with the restart policy
  ``always``, created by this script; no steward machine keeps them (the daemon's event
  stream sees their events and drops them: nobody subscribes to these names).
- **steward**: the real daemon runs ``--containers`` keeper machines (``KEEPER_TEMPLATE`` in
  benchlib: a docker watcher with ``desired: running``, ``interval: 5m``, so only the engine's
  event stream makes it react), whose containers it creates from the same image and command
  with the restart policy ``no``. The watcher reports the drift (fail transition
  ``restart``), then starts the container again and reports success (``recovered``).

A crash is the same on both sides: SIGKILL (``os.kill`` from this host: root, or the engine's
user) of the container's main process, its ``State.Pid`` from inspect. Not ``docker kill``:
the engine counts that as a manual stop and does not restart a ``--restart always``
container after it. Each container is crashed only once it has run ``STABLE`` + 0.5 s since
it last started, past the 10 s after which both the engine's restart manager (a 100 ms
delay, doubling for a container that dies sooner) and steward's watcher (``STABLE``: no
pause) treat a death as a first crash. Only one crash is in flight at a time.

Timed from just before the kill: the container running again (inspect polled every
``--poll-ms``, the same on both sides, until ``State.Running``, not ``Restarting``, with a
new ``State.Pid``), p50 and p99 per side; the engine's own ``State.StartedAt`` minus the
kill's wall-clock time (no polling in it); and the engine's events read back after each
crash (``die``; ``network disconnect``, its cleanup after the death; ``network connect``, a
start beginning; ``start``). On steward's side also the ``restart`` transition event as a
subscriber receives it (``GET /v1/events?follow=1`` on the control socket, read in a thread),
the ``recovered`` event, and the transition event's ``time`` (when the daemon decided it,
before the commit), which split steward's time into the engine's and its own, and the
daemon's CPU (utime + stime from /proc) from just before each kill to its ``recovered``
event, as a mean per crash.

Targets: the ``restart`` transition event p99 ≤ 250 ms (``restart-event``); steward's
running-again p50 ≤ 1.0x the engine's (``restart``). Prints ``restart-event: …`` and
``restart: … PASS|MISS`` lines. Without a Docker engine or the image it is a loud
``NOT RUN (reason)`` and exit code 2; 1 if the benchmark itself failed; else 0, PASS or MISS.

    .venv/bin/python bench/restart_compare.py --quick --no-record   # smoke, 2 crashes a side
    .venv/bin/python bench/restart_compare.py                       # 30 crashes a side, recorded
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
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any, TypeVar

from benchlib import (
    CLK_TCK,
    DOCKER_IMAGE,
    DOCKER_LABEL,
    KEEPER_COMMAND,
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
    ms,
    not_run,
    percentile,
    positive_int,
    print_lines,
    proc_sample,
    record,
    remove_bench_containers,
    results_section,
    run_main,
    short_state_dir,
    summary_line,
    write_keepers,
)

from steward.watchers.docker import STABLE

T = TypeVar("T")

TARGET_EVENT_P99 = 0.250  # seconds
TARGET_RATIO = 1.0  # steward's running-again p50 / the engine's (--restart always)
SETTLE = 0.2  # seconds of quiet after each measured crash
WAIT = 30.0  # seconds any one awaited thing may take


# arguments -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Crash -> running again: steward's docker keeper vs the engine's "
        "--restart always, alternating."
    )
    parser.add_argument("--kills", type=positive_int, default=None, help="crashes per side (30)")
    parser.add_argument(
        "--containers",
        type=positive_int,
        default=5,
        help="containers per side, crashed in turn (5; at most --kills)",
    )
    parser.add_argument(
        "--poll-ms", type=positive_int, default=5, help="inspect poll interval in ms (5)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 crashes per side")
    add_output_args(parser, "keep the state dir and the daemon's log")
    args = parser.parse_args(argv)
    if args.kills is None:
        args.kills = 2 if args.quick else 30
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
class Timings:
    """One side's crashes, each timed from just before the kill."""

    restart: list[float] = field(default_factory=list)  # -> running again (poll)
    started_at: list[float] = field(default_factory=list)  # -> the engine's StartedAt
    die: list[float] = field(default_factory=list)  # -> the engine's die event
    # the engine's own events after the kill (their timeNano, on this host's wall clock)
    die_to_cleaned: list[float] = field(default_factory=list)  # die -> network disconnect
    die_to_connect: list[float] = field(default_factory=list)  # die -> network connect
    connect_to_start: list[float] = field(default_factory=list)  # -> the start event


# what each side's Timings show, in order: (the figure's name, the field)
TIMINGS = (
    ("crash -> running again p50 / p90 / p99", "restart"),
    ("crash -> StartedAt (no poll) p50 / p90 / p99", "started_at"),
    ("crash -> die event", "die"),
    ("die -> network disconnect (the engine's cleanup after the death)", "die_to_cleaned"),
    ("die -> network connect (a start begins)", "die_to_connect"),
    ("network connect -> start event (the engine's start)", "connect_to_start"),
)


@dataclass
class Figures:
    kills: int
    containers: int
    poll: float
    loadavg: str = "?"
    not_run: str | None = None  # why the comparison did not run
    docker_version: str = "?"
    engine: Timings = field(default_factory=Timings)
    steward: Timings = field(default_factory=Timings)
    event: list[float] = field(default_factory=list)  # kill -> restart transition event
    recovered: list[float] = field(default_factory=list)  # kill -> recovered event
    # steward's own share: the engine's die (timeNano) and the transition event's time (when
    # the daemon decided it), both on this host's wall clock
    die_to_decided: list[float] = field(default_factory=list)  # die -> restart decided
    decided_to_received: list[float] = field(default_factory=list)  # -> event received
    daemon_ticks: int = 0  # the daemon's CPU from each kill to its recovered event, summed

    @property
    def event_p99(self) -> float:
        return percentile(self.event, 99)

    def ratio(self, q: int) -> float:
        return percentile(self.steward.restart, q) / percentile(self.engine.restart, q)

    def lines(self) -> list[tuple[str, str]]:
        rows = [
            ("crashes", f"{self.kills} per side, alternating; {self.containers} containers a side"),
            ("poll interval (both sides)", ms(self.poll, 1)),
        ]
        if self.not_run:
            return [*rows, ("comparison", f"NOT RUN ({self.not_run})")]
        return [
            *rows,
            ("docker engine", self.docker_version),
            *self._both(TIMINGS[:1]),
            ("ratio steward / engine, p50 | p99", f"{self.ratio(50):.2f} | {self.ratio(99):.2f}"),
            *self._both(TIMINGS[1:]),
            ("steward: crash -> restart transition event p50 / p90 / p99", _dist(self.event)),
            ("steward: crash -> recovered transition event p50 / p90 / p99", _dist(self.recovered)),
            (
                "steward: die -> restart decided (event stream, wake, the result)",
                _dist(self.die_to_decided),
            ),
            (
                "steward: decided -> event received (commit, publish, SSE)",
                _dist(self.decided_to_received),
            ),
            (
                "steward: the daemon's CPU per crash, kill -> recovered event (mean)",
                ms(self.daemon_ticks / CLK_TCK / max(1, len(self.recovered)), 1),
            ),
        ]

    def _both(self, figures: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        """Each of ``figures`` (name, Timings field), the engine's then steward's."""
        sides = (("engine --restart always", self.engine), ("steward keeper", self.steward))
        return [(f"{who}: {what}", _dist(getattr(t, f))) for what, f in figures for who, t in sides]

    def summaries(self) -> list[str]:
        """The scenario's lines: the event target, then the restart comparison."""
        if self.not_run:
            return [
                f"restart-event: NOT RUN ({self.not_run})",
                f"restart: NOT RUN ({self.not_run})",
            ]
        p99 = self.event_p99
        event = summary_line(
            "restart-event",
            f"crash -> transition event p99 {ms(p99, 1)} ({len(self.event)} crashes)",
            f"p99 ≤ {ms(TARGET_EVENT_P99)}",
            f"{p99 / TARGET_EVENT_P99:.2f}",
            p99 <= TARGET_EVENT_P99,
        )
        e, s = self.engine.restart, self.steward.restart
        restart = summary_line(
            "restart",
            f"crash -> running again p50 steward {ms(percentile(s, 50))} vs the engine's "
            f"--restart always {ms(percentile(e, 50))} (p99 {ms(percentile(s, 99))} vs "
            f"{ms(percentile(e, 99))})",
            f"steward p50 ≤ {TARGET_RATIO:g}x the engine's",
            f"{self.ratio(50):.2f}",
            self.ratio(50) <= TARGET_RATIO,
        )
        return [event, restart]


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


# the sides -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crash:
    """One crash: when the kill was sent, and when its container ran again."""

    container: str
    container_id: str
    wall0: float  # time.time() just before the kill
    t0: float  # time.monotonic() just before the kill
    running: float  # monotonic: first seen running again (a new pid)
    started_at: str  # the engine's State.StartedAt of the new run


class Side:
    """One side's containers: each crashed in turn once it has run past the backoff window,
    and timed until it runs again."""

    label = "?"

    def __init__(self, args: argparse.Namespace, api: Any, run_id: str, timings: Timings) -> None:
        self.args = args
        self.api = api
        self.run_id = run_id
        self.timings = timings
        self.containers: list[str] = []
        self.ids: dict[str, str] = {}
        self.up_since: dict[str, float] = {}  # monotonic: when each container last started
        self.turn = 0

    def _wait(self, check: Callable[[], T | None], what: str) -> T:
        return poll_until(check, WAIT, self.args.poll, what)

    def _running(self) -> None:
        """Wait until every container runs; note its id and when."""
        for c in self.containers:
            self._wait(lambda c=c: container_running(self.api, c), f"{c} ran")
            self.ids[c] = self.api.inspect_container(c)["Id"]
            self.up_since[c] = time.monotonic()

    def crash_one(self) -> None:
        container = self.containers[self.turn % len(self.containers)]
        self.turn += 1
        time.sleep(max(0.0, self.up_since[container] + STABLE + 0.5 - time.monotonic()))
        old, _ = self._wait(lambda: container_running(self.api, container), f"{container} ran")

        def again() -> tuple[int, str] | None:
            now = container_running(self.api, container)
            return now if now is not None and now[0] != old else None

        self.before_kill()
        wall0, t0 = time.time(), time.monotonic()
        os.kill(old, signal.SIGKILL)
        _, started_at = self._wait(again, f"{container} ran again")
        crash = Crash(container, self.ids[container], wall0, t0, time.monotonic(), started_at)
        self.up_since[container] = crash.running
        self.after(crash)
        self._timings(crash)

    def before_kill(self) -> None:
        """What a side notes just before a kill."""

    def after(self, crash: Crash) -> None:
        """What a side waits for after its container runs again."""

    def _timings(self, crash: Crash) -> dict[str, float]:
        t = self.timings
        t.restart.append(crash.running - crash.t0)
        started = docker_time(crash.started_at)
        if started is not None:
            t.started_at.append(started - crash.wall0)
        engine = engine_events(self.api, crash.container_id, crash.wall0)
        die, connect = engine.get("die"), engine.get("network connect")
        if die is not None:
            t.die.append(die - crash.wall0)
            if "network disconnect" in engine:
                t.die_to_cleaned.append(engine["network disconnect"] - die)
            if connect is not None:
                t.die_to_connect.append(connect - die)
        if connect is not None and "start" in engine:
            t.connect_to_start.append(engine["start"] - connect)
        return engine

    def close(self) -> None:
        return


class EngineSide(Side):
    """Containers with the restart policy ``always``; nothing else keeps them."""

    label = "engine"

    def start(self) -> None:
        host_config = self.api.create_host_config(restart_policy={"Name": "always"})
        for i in range(self.args.containers):
            name = f"steward-bench-always{i}-{self.run_id}"
            self.api.create_container(
                DOCKER_IMAGE,
                command=KEEPER_COMMAND.split(),
                name=name,
                labels={DOCKER_LABEL: self.run_id},
                host_config=host_config,
                detach=True,
            )
            self.api.start(name)
            self.containers.append(name)
        self._running()


class StewardSide(Side):
    """The daemon on keeper machines (restart policy ``no``), and its event stream."""

    label = "steward"

    def __init__(self, args: argparse.Namespace, api: Any, run_id: str, figures: Figures) -> None:
        super().__init__(args, api, run_id, figures.steward)
        self.figures = figures
        self.machines_dir = Path(tempfile.mkdtemp(prefix="steward-restart-machines-"))
        self.state_dir = short_state_dir("sr-")
        self.daemon = Daemon(
            self.machines_dir,
            self.state_dir,
            self.state_dir / "daemon.log",
            extra_args=("--metrics-listen", "off"),
        )
        self.machines: dict[str, str] = {}  # container -> machine
        self.stream: TransitionStream | None = None
        self._ticks_before = 0  # the daemon's CPU ticks just before the kill
        # this crash's restart and recovered events: (received, decided)
        self._restart: tuple[float, float | None] = (0.0, None)
        self._recovered: tuple[float, float | None] = (0.0, None)

    def start(self) -> None:
        names = [f"keeper{i}" for i in range(self.args.containers)]
        kept = write_keepers(self.machines_dir, names, self.run_id)
        self.machines = {container: machine for machine, container in kept.items()}
        self.containers = list(self.machines)
        self.daemon.start()
        socket_path = self.state_dir / "steward.sock"
        self.stream = self._wait(lambda: self._connect(socket_path), "the control socket answered")
        self._running()

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
            return super()._wait(checked, what)
        except BenchError as exc:
            raise self.daemon.failed(str(exc)) from None

    def after(self, crash: Crash) -> None:
        """Wait for the restart and recovered events (stamped as the stream thread got them),
        so the machine is back in ``running`` before its next crash."""
        assert self.stream is not None
        stream, machine = self.stream, self.machines[crash.container]
        self._restart = self._wait(
            lambda: stream.find(machine, "restart", crash.t0), f"{machine} fired restart"
        )
        self._recovered = self._wait(
            lambda: stream.find(machine, "recovered", crash.t0), f"{machine} fired recovered"
        )
        self.figures.daemon_ticks += self._ticks() - self._ticks_before

    def before_kill(self) -> None:
        self._ticks_before = self._ticks()

    def _ticks(self) -> int:
        sample = proc_sample(self.daemon.pid)
        if sample is None:
            raise self.daemon.failed("the daemon exited")
        return sample.self_ticks

    def _timings(self, crash: Crash) -> dict[str, float]:
        engine = super()._timings(crash)
        f = self.figures
        (received, decided), (recovered, _) = self._restart, self._recovered
        f.event.append(received - crash.t0)
        f.recovered.append(recovered - crash.t0)
        if decided is not None:
            if "die" in engine:
                f.die_to_decided.append(decided - engine["die"])
            f.decided_to_received.append(crash.wall0 + (received - crash.t0) - decided)
        return engine

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        with contextlib.suppress(BenchError):
            if self.daemon.alive():
                self.daemon.stop()
        self.daemon.close()
        kept = f"steward state and log {self.state_dir}, machines {self.machines_dir}"
        keep_or_remove(self.args.keep, kept, self.machines_dir, self.state_dir)


# the run ---------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.kills, args.containers, args.poll, loadavg=loadavg())
    try:
        api = docker_connect()
    except ToolMissing as exc:
        figures.not_run = str(exc)
        return figures
    figures.docker_version = f"docker {api.version().get('Version', '?')}"
    run_id = uuid.uuid4().hex[:12]
    sides: list[Side] = []
    try:
        sides += [EngineSide(args, api, run_id, figures.engine)]
        sides += [StewardSide(args, api, run_id, figures)]
        for side in sides:
            side.start()
        print(f"{args.kills} crashes per side, engine and steward in turn", flush=True)
        for i in range(args.kills):
            for side in sides if i % 2 == 0 else reversed(sides):  # neither always first
                side.crash_one()
                time.sleep(SETTLE)
            print(f"  round {i + 1}/{args.kills}", flush=True)
        return figures
    finally:
        for side in sides:
            side.close()
        remove_bench_containers(api, run_id)
        api.close()


def section(figures: Figures) -> str:
    return results_section(
        f"restart_compare: {figures.kills} crashes per side, steward vs the engine's --restart "
        "always",
        figures.lines(),
        "the same image and command on both sides; a crash is SIGKILL of the container's "
        "State.Pid, each container crashed only after 10.5 s up; engine: restart policy "
        "always, no steward; steward: keeper machines (docker watcher, desired running, "
        "interval 5m), restart policy no; crash -> running again (new pid, inspect polled), "
        "-> the restart transition event (SSE on the control socket); alternating",
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
        return NOT_RUN_EXIT if figures.not_run else 0

    return run_main("restart_compare", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
