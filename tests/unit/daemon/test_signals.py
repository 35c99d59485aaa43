"""The daemon's stop: a first signal stops gracefully, a second one forces it."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.daemon.config import Config
from steward.daemon.server import Daemon, ExitCode


@pytest.fixture
def dirs() -> Iterator[tuple[Path, Path]]:
    base = Path(tempfile.mkdtemp(prefix="sig-", dir="/tmp"))  # short: the socket path is bound
    machines = base / "machines"
    machines.mkdir()
    (machines / "idle.yaml").write_text(
        "name: idle\nversion: 1.0.0\ninitial_state: a\n"
        "transitions:\n  - {name: go, from: [a], destination: b}\n"
    )
    yield machines, base / "state"
    shutil.rmtree(base, ignore_errors=True)


def daemon(machines: Path, state: Path, timeout: float) -> Daemon:
    config = Config(node="n1", machines_dir=machines, state_dir=state, metrics_listen=None)
    return Daemon(config, shutdown_timeout=timeout)


async def started(d: Daemon) -> asyncio.Task[ExitCode]:
    task = asyncio.ensure_future(d.serve())
    deadline = time.monotonic() + 20
    while "idle" not in d.node.machines:
        assert time.monotonic() < deadline and not task.done(), "daemon did not start"
        await asyncio.sleep(0.02)
    return task


async def test_one_signal_stops_gracefully(dirs: tuple[Path, Path]) -> None:
    d = daemon(*dirs, timeout=30)
    task = await started(d)
    d.request_exit()
    assert await asyncio.wait_for(task, 20) is ExitCode.OK
    assert not (dirs[1] / "steward.sock").exists()


async def test_a_second_signal_forces_a_stop_that_hangs(dirs: tuple[Path, Path]) -> None:
    d = daemon(*dirs, timeout=600)
    task = await started(d)
    never = asyncio.Event()

    async def stuck() -> None:  # a machine that will not stop
        await never.wait()

    d.node.stop = stuck  # type: ignore[method-assign]
    d.request_exit()
    await asyncio.sleep(0.2)
    assert not task.done()  # waiting on the machines, within its 600 s
    began = time.monotonic()
    d.request_exit()
    assert await asyncio.wait_for(task, 20) is ExitCode.FORCED
    assert time.monotonic() - began < 10
