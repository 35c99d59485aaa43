"""sd_notify: the datagrams a real Unix socket receives, from the notifier and from the daemon."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.daemon.config import Config
from steward.daemon.notify import SystemdNotify
from steward.daemon.server import Daemon, ExitCode
from tests.support.daemon import until, wait_until


class NotifySocket:
    """What systemd would receive: every datagram, with the time it arrived (a thread reads
    them, so arrival times stay true while the daemon's event loop is blocked)."""

    def __init__(self, address: str) -> None:
        self.address = address
        target = "\0" + address[1:] if address.startswith("@") else address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(target)
        self.sock.settimeout(0.05)
        self.received: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data.decode()))

    def messages(self) -> list[str]:
        return [m for _, m in self.received]

    def with_key(self, assignment: str) -> list[str]:
        return [m for m in self.messages() if assignment in m.splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ntf-", dir="/tmp"))  # short: sockets are bound here
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def systemd(base: Path) -> Iterator[NotifySocket]:
    receiver = NotifySocket(str(base / "notify"))
    yield receiver
    receiver.close()


# the notifier ----------------------------------------------------------------------------------
def test_messages_are_newline_separated_assignments(systemd: NotifySocket) -> None:
    notify = SystemdNotify(systemd.address)
    notify.ready("2 machines running")
    notify.stopping()
    wait_until(lambda: len(systemd.received) == 2, 5, "two datagrams")
    assert systemd.messages() == [
        "READY=1\nSTATUS=2 machines running\n",
        "STOPPING=1\nSTATUS=stopping\n",
    ]
    notify.close()


def test_abstract_namespace_address(base: Path) -> None:
    receiver = NotifySocket(f"@steward-test-{base.name}")
    notify = SystemdNotify(receiver.address)
    try:
        assert notify.send("READY=1")
        wait_until(lambda: receiver.messages() == ["READY=1\n"], 5, "READY=1 at @address")
    finally:
        notify.close()
        receiver.close()


def test_status_is_sent_only_when_it_changes(systemd: NotifySocket) -> None:
    notify = SystemdNotify(systemd.address)
    for text in ["a", "a", "b", "b", "a"]:
        notify.status(text)
    notify.send("END=1")
    notify.close()
    wait_until(lambda: systemd.with_key("END=1"), 5, "END=1")
    assert systemd.messages() == ["STATUS=a\n", "STATUS=b\n", "STATUS=a\n", "END=1\n"]


def test_reloading_carries_the_monotonic_clock(systemd: NotifySocket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notify = SystemdNotify(systemd.address)
    notify.reloading()
    notify.close()
    message = wait_until(lambda: systemd.with_key("RELOADING=1"), 5, "RELOADING=1")[0]
    fields = dict(line.split("=", 1) for line in message.splitlines())
    assert before <= int(fields["MONOTONIC_USEC"]) <= before + 5_000_000


def test_nothing_is_sent_without_notify_socket() -> None:
    notify = SystemdNotify.from_environ({"WATCHDOG_USEC": "1000000"}, pid=1)
    assert not notify.enabled and notify.watchdog_interval is None
    assert not notify.send("READY=1")
    notify.ready("x")  # no error either


def test_a_missing_socket_is_not_an_error(base: Path) -> None:
    notify = SystemdNotify(str(base / "nobody-listens"))
    assert not notify.send("READY=1")
    assert not notify.send("READY=1")
    notify.close()


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "43"}, None),  # another process's
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_our_pid(
    environ: dict[str, str], interval: float | None
) -> None:
    notify = SystemdNotify.from_environ({"NOTIFY_SOCKET": "/run/x", **environ}, pid=42)
    assert notify.watchdog_interval == interval


def test_an_address_that_is_not_a_path_is_ignored() -> None:
    assert not SystemdNotify.from_environ({"NOTIFY_SOCKET": "vsock:2:1"}, pid=1).enabled
    assert SystemdNotify.from_environ({"NOTIFY_SOCKET": "@x"}, pid=1).enabled


# the daemon ------------------------------------------------------------------------------------
def make_daemon(base: Path, notify: SystemdNotify) -> Daemon:
    machines = base / "machines"
    machines.mkdir()
    (machines / "idle.yaml").write_text(
        "name: idle\nversion: 1.0.0\ninitial_state: a\n"
        "transitions:\n  - {name: go, from: [a], destination: b}\n"
    )
    config = Config(node="n1", machines_dir=machines, state_dir=base / "state", metrics_listen=None)
    return Daemon(config, notify=notify)


async def test_ready_once_machines_run_and_the_api_answers(
    base: Path, systemd: NotifySocket
) -> None:
    d = make_daemon(base, SystemdNotify(systemd.address))
    task = asyncio.ensure_future(d.serve())
    ready = await until("READY=1", lambda: systemd.with_key("READY=1"))
    assert "idle" in d.node.machines and (base / "state" / "steward.sock").exists()
    assert ready == ["READY=1\nSTATUS=1 machines running, 0 rejected; no NATS configured\n"]

    d.request_rescan()  # SIGHUP: RELOADING=1, then READY=1 once the rescan has run
    await until("a second READY=1", lambda: len(systemd.with_key("READY=1")) == 2)
    order = [m.split("\n")[0] for m in systemd.messages() if not m.startswith("STATUS=")]
    assert order == ["READY=1", "RELOADING=1", "READY=1"]

    d.request_exit()
    assert await asyncio.wait_for(task, 20) is ExitCode.OK
    assert systemd.with_key("STOPPING=1")


async def test_status_follows_the_machines_directory(base: Path, systemd: NotifySocket) -> None:
    d = make_daemon(base, SystemdNotify(systemd.address))
    task = asyncio.ensure_future(d.serve())
    await until("READY=1", lambda: systemd.with_key("READY=1"))
    (base / "machines" / "broken.yaml").write_text("name: broken\n")
    await until(
        "a STATUS= with the rejected file",
        lambda: systemd.with_key("STATUS=1 machines running, 1 rejected; no NATS configured"),
    )
    d.request_exit()
    assert await asyncio.wait_for(task, 20) is ExitCode.OK


async def test_the_watchdog_is_fed_by_the_event_loop(base: Path, systemd: NotifySocket) -> None:
    d = make_daemon(base, SystemdNotify(systemd.address, watchdog_usec=100_000))  # every 50 ms
    task = asyncio.ensure_future(d.serve())
    await until("READY=1", lambda: systemd.with_key("READY=1"))
    await until("pings", lambda: len(systemd.with_key("WATCHDOG=1")) >= 3)

    wedged = time.monotonic()
    time.sleep(0.5)  # the loop is wedged: no ping may arrive meanwhile
    unwedged = time.monotonic()
    await until("pings again", lambda: any(t > unwedged for t, _ in systemd.received))
    pings = [t for t, m in systemd.received if m == "WATCHDOG=1\n"]
    assert not [t for t in pings if wedged + 0.1 < t < unwedged]
    assert [t for t in pings if t >= unwedged]

    d.request_exit()
    assert await asyncio.wait_for(task, 20) is ExitCode.OK
