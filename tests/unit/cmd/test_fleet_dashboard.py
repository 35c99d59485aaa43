"""``steward fleet dashboard`` as a user runs it: one clear error line when it cannot start,
and a server that prints its URL, answers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import invoke
from tests.support.nats_server import NatsServer, free_port, running_nats


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


def run(*args: str) -> tuple[int, str]:
    result = invoke("fleet", "dashboard", *args)
    return result.exit_code, result.output


def test_a_bad_listen_address_is_one_line() -> None:
    code, out = run("--listen", "8080", "--nats", "nats://127.0.0.1:1")
    assert code == 1
    assert out.startswith("steward: error: --listen must be HOST:PORT") and out.count("\n") == 1


def test_no_nats_is_one_line() -> None:
    code, out = run("--listen", "127.0.0.1:0", "--nats", f"nats://127.0.0.1:{free_port()}")
    assert code == 1
    assert out.startswith("steward: error: cannot connect to NATS") and out.count("\n") == 1


def test_no_bucket_is_one_line(nats_server: NatsServer) -> None:
    code, out = run("--listen", "127.0.0.1:0", "--nats", nats_server.url)
    assert code == 1
    assert out.startswith("steward: error: no fleet bucket 'STEWARD_FLEET'"), out
    assert out.count("\n") == 1


def test_serves_until_sigterm(nats_server: NatsServer) -> None:
    import asyncio

    import nats

    async def create() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().create_key_value(bucket="MYFLEET")
        await nc.close()

    asyncio.run(create())
    argv = [sys.executable, "-m", "steward", "fleet", "dashboard", "--listen", "127.0.0.1:0"]
    argv += ["--nats", nats_server.url, "--bucket", "MYFLEET"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()  # blocks until the server is up, or it ended
            assert "http://127.0.0.1:" in line, line + proc.stderr.read()
            url = line.split()[3]
            with urllib.request.urlopen(url + "api/fleet", timeout=10) as resp:
                assert json.load(resp)["nodes"] == []
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            assert "Traceback" not in proc.stderr.read()
        finally:
            proc.kill()
