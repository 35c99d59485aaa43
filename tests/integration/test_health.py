"""Health probes against real things: a local HTTP server the test flips between answers, TCP
ports that listen or not, Nagios plugin scripts, and the real daemon remediating a machine
and running Choria's check_httpd machine unchanged but for the plugin path."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from steward.machine.spec import WatcherSpec
from steward.watchers.base import Outcome
from steward.watchers.nagios import NagiosProperties, NagiosWatcher
from steward.watchers.probes import CommandProbe, HttpProbe, Status, StatusRange, TcpProbe
from tests.support.conformance import CORPUS
from tests.support.daemon import Daemon, MachinesDir, base_env, write_atomic, write_script
from tests.support.fakes import fake_context
from tests.support.machines import Handle

CHECK_HTTPD = CORPUS / "check_httpd.yaml"


class FlipServer:
    """An HTTP server on a free loopback port answering as ``mode`` says."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        if self.mode == "slow":
            await asyncio.sleep(5)
        if self.mode == "error":
            return web.Response(status=500, text="broken")
        return web.Response(text="status: healthy")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"


@pytest.fixture
async def server() -> AsyncIterator[FlipServer]:
    s = FlipServer()
    await s.start()
    yield s
    await s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


async def test_http_probe_follows_the_server(server: FlipServer) -> None:
    probe = HttpProbe(server.url, body_regex="healthy", timeout=0.5)
    ok = await probe.observe()
    assert ok.status is Status.OK
    assert ok.output.startswith("HTTP OK: HTTP/1.1 200 OK - 15 bytes in ")
    assert [p.label for p in ok.perfdata] == ["time", "size"]

    server.mode = "error"
    error = await probe.observe()
    assert error.status is Status.CRITICAL
    assert "500 Internal Server Error" in error.output
    assert error.output.endswith("(expected status 200-399)")
    accepting = HttpProbe(server.url, expect_status=(StatusRange(500, 599),), timeout=0.5)
    assert (await accepting.observe()).status is Status.OK

    server.mode = "slow"
    slow = await probe.observe()
    assert (slow.status, slow.output) == (
        Status.CRITICAL,
        "HTTP CRITICAL - no response within 0.5s",
    )

    server.mode = "ok"
    wrong_body = await HttpProbe(server.url, body_regex="^ready$", timeout=0.5).observe()
    assert wrong_body.status is Status.CRITICAL
    assert wrong_body.output.endswith("(body does not match '^ready$')")

    await server.close()
    closed = await probe.observe()
    assert closed.status is Status.CRITICAL
    assert closed.output.startswith("HTTP CRITICAL - ClientConnectorError")


async def test_tcp_probe_listening_and_closed_port() -> None:
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        ok = await TcpProbe("127.0.0.1", port, 1.0).observe()
        assert ok.status is Status.OK
        assert ok.output.startswith("TCP OK - ")
        assert ok.perfdata[0].label == "time"
    finally:
        listener.close()
        await listener.wait_closed()
    closed = await TcpProbe("127.0.0.1", free_port(), 1.0).observe()
    assert closed.status is Status.CRITICAL
    assert "Connection refused" in closed.output


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [
        (0, "OK", Outcome.SUCCESS),
        (1, "WARNING", Outcome.UNCHANGED),
        (2, "CRITICAL", Outcome.FAILURE),
        (3, "UNKNOWN", Outcome.FAILURE),
        (42, "UNKNOWN", Outcome.FAILURE),
    ],
)
async def test_nagios_plugin_each_exit_code(
    tmp_path: Path, code: int, status: str, outcome: Outcome
) -> None:
    write_script(
        tmp_path / "check_thing",
        f"""
        echo "THING {status} - exit {code} | 'thing count'=7;5;10;0;20"
        echo "detail line"
        exit {code}
        """,
    )
    props = NagiosProperties(CommandProbe("check_thing -v", ("check_thing", "-v")))
    spec = WatcherSpec(name="check", type="nagios", properties=props)
    watcher = NagiosWatcher(spec, Handle(tmp_path), fake_context(tmp_path))
    result = await watcher.check()
    assert (result.outcome, result.transition) == (outcome, status)
    assert result.payload["status"] == status
    assert result.payload["output"] == f"THING {status} - exit {code}"
    assert result.payload["long_output"] == "detail line"
    assert result.payload["perfdata"] == [
        {
            "label": "thing count",
            "value": 7.0,
            "uom": "",
            "warn": "5",
            "crit": "10",
            "min": 0.0,
            "max": 20.0,
        }
    ]


# --- through the real daemon ------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    state_dir = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))  # short socket path
    config = tmp_path / "steward.yaml"
    config.write_text("")
    d = Daemon(tmp_path / "machines", state_dir, tmp_path / "daemon.log", base_env(config))
    (tmp_path / "machines").mkdir()
    try:
        yield d
    finally:
        d.cleanup()
        shutil.rmtree(state_dir, ignore_errors=True)


REMEDIATED = """
name: web_guard
version: 1.0.0
initial_state: unknown
transitions:
  - {name: healthy, from: [unknown, ok, critical, remediating], destination: ok}
  - {name: unhealthy, from: [unknown, ok, remediating], destination: critical}
  - {name: remediated, from: [critical], destination: remediating}
watchers:
  - name: probe
    type: health
    state_match: [unknown, ok, remediating]
    success_transition: healthy
    fail_transition: unhealthy
    interval: 200ms
    properties:
      command: ./check_service
  - name: restart
    type: exec
    state_match: [critical]
    success_transition: remediated
    properties:
      command: ./restart_service
"""


def transitions_seen(daemon: Daemon, machine: str) -> list[str]:
    return [
        r["to_state"]
        for r in daemon.logs()
        if r.get("machine") == machine and "to_state" in r and r.get("transition")
    ]


def test_a_machine_moves_ok_critical_remediation_ok(daemon: Daemon) -> None:
    machines = MachinesDir(daemon.machines_dir)
    directory = machines.add(
        "web_guard",
        REMEDIATED,
        {
            "check_service": """
            if [ "$(cat service.state)" = up ]; then echo "SERVICE OK | up=1;;;0;1"; exit 0; fi
            echo "SERVICE CRITICAL - down | up=0;;;0;1"; exit 2
            """,
            "restart_service": "echo restarted >> restarts.log\necho up > service.state\n",
        },
    )
    write_atomic(directory / "service.state", "up\n")
    daemon.start()
    machine = daemon.wait_state("web_guard", "ok")
    probe = next(w for w in machine["watchers"] if w["name"] == "probe")
    assert probe["state"]["status"] == "OK"
    assert probe["state"]["perfdata"][0]["label"] == "up"

    write_atomic(directory / "service.state", "down\n")
    daemon.wait_machine(
        "web_guard",
        lambda m: m["state"] == "ok" and m["seq"] >= 4,
        what="back to ok after a remediation",
    )
    assert transitions_seen(daemon, "web_guard")[-4:] == ["ok", "critical", "remediating", "ok"]
    assert (directory / "restarts.log").read_text() == "restarted\n"
    assert daemon.stop() == 0


def test_choria_check_httpd_runs_unchanged_but_for_the_plugin_path(daemon: Daemon) -> None:
    directory = daemon.machines_dir / "check_httpd"
    directory.mkdir()
    plugin = write_script(
        directory / "check_procs",
        """
        code=$(cat "$(dirname "$0")/code")
        echo "PROCS STATUS $code: 2 processes with command name 'httpd' | procs=2;;1:25;0;"
        exit $code
        """,
    )
    write_atomic(directory / "code", "0\n")
    original = CHECK_HTTPD.read_text()
    assert original.count("/usr/lib64/nagios/plugins/check_procs") == 1
    text = original.replace("/usr/lib64/nagios/plugins/check_procs", str(plugin))
    (directory / "machine.yaml").write_text(text)
    assert [line for line in text.splitlines() if line not in original.splitlines()] == [
        f"      plugin: {plugin} -C httpd -c 1:25"
    ]
    checked = daemon.cli("validate", str(daemon.machines_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    daemon.start()
    machine = daemon.wait_state("check_httpd", "ok")
    check = next(w for w in machine["watchers"] if w["name"] == "check")
    assert check["state"]["perfdata"] == [
        {
            "label": "procs",
            "value": 2.0,
            "uom": "",
            "warn": None,
            "crit": "1:25",
            "min": 0.0,
            "max": None,
        }
    ]
    write_atomic(directory / "code", "2\n")
    daemon.wait_state("check_httpd", "critical", timeout=20)  # the next check, 10s later
    assert daemon.stop() == 0
