"""The Rust notifier driven from asyncio without watchfiles' anyio-based ``awatch``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import watchfiles

from steward.daemon.watch import Change, awatch, notifier_settings

REPO = Path(__file__).resolve().parents[3]
DEADLINE = 20.0


def test_change_numbers_are_watchfiles() -> None:
    assert {c.name: int(c) for c in Change} == {c.name: int(c) for c in watchfiles.Change}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (False, False, 300)),
        ({"WATCHFILES_FORCE_POLLING": "1", "WATCHFILES_POLL_DELAY_MS": "50"}, (False, True, 50)),
        (
            {"WATCHFILES_FORCE_POLLING": "disabled", "WATCHFILES_POLL_DELAY_MS": "x"},
            (False, False, 300),
        ),
        ({"WATCHFILES_DEBUG": "1"}, (True, False, 300)),
    ],
)
def test_notifier_settings_from_watchfiles_environment(
    environ: dict[str, str], expected: tuple[bool, bool, int]
) -> None:
    assert notifier_settings(environ) == expected


async def test_changes_come_in_filtered_batches_until_the_stop_event(tmp_path: Path) -> None:
    stop = asyncio.Event()
    batches: list[set[tuple[Change, str]]] = []

    async def consume() -> None:
        async for batch in awatch(
            tmp_path,
            watch_filter=lambda _, path: not path.endswith(".tmp"),
            debounce=1000,
            step=20,
            stop_event=stop,
        ):
            batches.append(batch)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the watches are in place before awatch's first await
    (tmp_path / "skipped.tmp").write_text("x")
    (tmp_path / "a.yaml").write_text("x")
    async with asyncio.timeout(DEADLINE):
        while not batches:
            await asyncio.sleep(0.01)
    assert (Change.added, str(tmp_path / "a.yaml")) in batches[0]
    assert all(not path.endswith(".tmp") for batch in batches for _, path in batch)
    stop.set()
    async with asyncio.timeout(DEADLINE):
        await task  # the notifier's thread saw the stop event: the generator ended


async def test_a_cancelled_watch_frees_its_worker_thread_at_once(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1)  # the notifier's blocking call takes it
    loop.set_default_executor(executor)
    try:

        async def consume() -> None:
            async for _ in awatch(
                tmp_path, watch_filter=lambda *_: True, debounce=1000, step=20, stop_event=stop
            ):
                pass

        stop = asyncio.Event()
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # well before the notifier's own timeout (RUST_TIMEOUT, 5 s): the thread saw the cancel
        async with asyncio.timeout(2.0):
            assert await asyncio.to_thread(lambda: "free") == "free"
        assert not stop.is_set()
    finally:
        executor.shutdown(wait=True)


def test_the_watch_module_loads_neither_anyio_nor_multiprocessing() -> None:
    code = """
        import sys
        import steward.daemon.watch
        heavy = ["watchfiles", "watchfiles.main", "anyio", "multiprocessing"]
        print(*[name for name in heavy if name in sys.modules] or ["none"])
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["none"]
