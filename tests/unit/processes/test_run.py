"""run_process on its own: exit codes, both streams, signals, and no descriptor or thread left
behind, with a pidfd for the exit and (where there is none) a thread that waits for it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from steward.processes import ProcessTable
from steward.processes.run import run_process


@pytest.fixture(params=["pidfd", "thread"])
def exit_watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: with pidfds (Linux 5.3+), and as on a kernel without them."""
    if request.param == "thread":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("no os.pidfd_open here")
    return str(request.param)


def sh(script: str) -> tuple[str, ...]:
    return ("/bin/sh", "-c", script)


def open_fds() -> set[str]:
    return {p.name for p in Path("/proc/self/fd").iterdir()}


def waiting_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("wait-")]


async def test_exit_code_and_both_streams(tmp_path: Path, exit_watch: str) -> None:
    table = ProcessTable()
    run = await run_process(
        sh("echo out; echo err >&2; exit 3"), tmp_path, {"PATH": "/bin"}, 10, table=table
    )
    assert (run.exit_code, run.stdout, run.stderr, run.timed_out) == (3, "out\n", "err\n", False)
    assert not table.waiting  # the exit was collected and the table told


async def test_a_timeout_kills_the_group_and_reports_the_signal(
    tmp_path: Path, exit_watch: str
) -> None:
    run = await run_process(sh("exec sleep 30"), tmp_path, {}, 0.2, table=ProcessTable())
    assert run.timed_out
    assert run.exit_code == -9  # SIGKILL, as asyncio reports a signal


async def test_output_beyond_the_cap_is_read_and_dropped(tmp_path: Path, exit_watch: str) -> None:
    # 200 KiB through a 64 KiB pipe: the writer must not block on a full pipe
    script = "head -c 204800 /dev/zero | tr '\\0' x; echo done >&2"
    run = await run_process(
        sh(script), tmp_path, {"PATH": "/usr/bin:/bin"}, 10, table=ProcessTable()
    )
    assert run.exit_code == 0
    assert run.stdout == "x" * 65536
    assert run.stderr == "done\n"


async def test_nothing_is_left_open(tmp_path: Path, exit_watch: str) -> None:
    table = ProcessTable()
    await run_process(("/bin/true",), tmp_path, {}, 10, table=table)  # warm up lazy imports
    before = open_fds()
    for _ in range(20):
        run = await run_process(("/bin/true",), tmp_path, {}, 10, table=table)
        assert run.exit_code == 0
    assert open_fds() == before  # pipes and pidfds closed
    assert waiting_threads() == []  # and no thread still waiting for a child


async def test_a_program_that_cannot_run_is_an_error_not_a_crash(tmp_path: Path) -> None:
    run = await run_process((str(tmp_path / "missing"),), tmp_path, {}, 10, table=ProcessTable())
    assert run.exit_code is None
    assert run.error.startswith(f"cannot run {tmp_path / 'missing'}")
