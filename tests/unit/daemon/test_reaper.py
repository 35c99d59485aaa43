"""The daemon waits for its command processes with pidfds on the loop (Python 3.11)."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from steward.daemon.reaper import pidfd_child_watcher

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="3.12+ uses pidfds by itself; nothing to install"
)


async def test_children_exit_as_loop_events_not_waitpid_threads() -> None:
    with pidfd_child_watcher() as used:
        assert used  # Linux >= 5.3: CI's and this machine's kernel
        assert isinstance(asyncio.get_child_watcher(), asyncio.PidfdChildWatcher)
        threads = threading.active_count()
        procs = [await asyncio.create_subprocess_exec("sleep", "0.3") for _ in range(5)]
        # the default (ThreadedChildWatcher) starts one waitpid thread per running child
        assert threading.active_count() == threads
        assert [await p.wait() for p in procs] == [0] * 5
        failed = await asyncio.create_subprocess_exec("sh", "-c", "exit 3")
        assert await failed.wait() == 3
    assert not isinstance(asyncio.get_child_watcher(), asyncio.PidfdChildWatcher)
    # and the default is back for the next loop
    proc = await asyncio.create_subprocess_exec("true")
    assert await proc.wait() == 0


async def test_daemons_sharing_a_process_share_the_watcher_and_the_last_restores() -> None:
    first, second = pidfd_child_watcher(), pidfd_child_watcher()
    first.__enter__()
    second.__enter__()  # a second daemon in this process (tests run several)
    shared = asyncio.get_child_watcher()
    assert isinstance(shared, asyncio.PidfdChildWatcher)
    sleeper = await asyncio.create_subprocess_exec("sleep", "0.3")
    first.__exit__(None, None, None)  # the first daemon stops while the second runs on
    assert asyncio.get_child_watcher() is shared
    assert await sleeper.wait() == 0  # still told of its child's exit
    second.__exit__(None, None, None)
    assert not isinstance(asyncio.get_child_watcher(), asyncio.PidfdChildWatcher)


async def test_a_stopped_reaper_is_no_longer_the_subreaper() -> None:
    import ctypes

    from steward.daemon.reaper import PR_SET_CHILD_SUBREAPER, Reaper
    from steward.processes import ProcessTable

    pr_get_child_subreaper = PR_SET_CHILD_SUBREAPER + 1
    libc = ctypes.CDLL(None, use_errno=True)

    def subreaper() -> bool:
        flag = ctypes.c_int(0)
        assert libc.prctl(pr_get_child_subreaper, ctypes.byref(flag), 0, 0, 0) == 0
        return bool(flag.value)

    reaper = Reaper(ProcessTable())
    reaper.start()
    assert subreaper()
    await reaper.stop()
    # what is orphaned in this process afterwards (another test's dockerd, say) goes to init
    assert not subreaper()


async def test_the_reaper_walks_proc_only_once_a_child_has_exited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess
    import time

    from steward.daemon import reaper as reaper_module
    from steward.daemon.reaper import Reaper
    from steward.processes import ProcessTable

    looks: list[bool] = []
    walks: list[float] = []

    def counting_look() -> bool:
        looks.append(exited := real_look())
        return exited

    def counting_walk() -> list[object]:
        walks.append(time.monotonic())
        return list(real_walk())

    real_look, real_walk = reaper_module.exited_child, Reaper._orphans
    monkeypatch.setattr(reaper_module, "exited_child", counting_look)
    reaper = Reaper(ProcessTable(), interval=0.01)
    monkeypatch.setattr(reaper, "_orphans", counting_walk)
    reaper.start()
    try:
        deadline = time.monotonic() + 5
        while len(looks) < 10:  # ten looks with no child exited: no walk
            assert time.monotonic() < deadline, "the reaper did not look"
            await asyncio.sleep(0.01)
        assert walks == []
        # an orphan: the shell exits at once (reaped here), its `sleep` is reparented to us
        subprocess.run(["sh", "-c", "sleep 0.1 &"], check=True)
        while reaper.reaped < 1:
            assert time.monotonic() < deadline, "the orphan was not reaped"
            await asyncio.sleep(0.01)
        assert walks  # it exited: the walk found it
    finally:
        await reaper.stop()
