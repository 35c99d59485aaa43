"""The collector around loading: off while loading, what the load made frozen; a rescan that
stopped machines and a daemon that stops give frozen garbage back."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.daemon import heap

REPO = Path(__file__).resolve().parents[3]


class Cycle:
    """A machine and its watchers refer to each other: only the cyclic collector frees them."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_loading_turns_the_collector_off_then_freezes_what_it_made() -> None:
    assert gc.isenabled()
    with heap.loading():
        assert not gc.isenabled()
        loaded = Cycle()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    gone = weakref.ref(loaded)
    del loaded
    gc.collect()
    assert gone() is not None  # frozen: full collections never look at it
    heap.released()
    gc.collect()
    assert gone() is None


def test_loading_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    with heap.loading():
        pass
    assert not gc.isenabled()


def test_machines_stopped_collects_frozen_garbage_and_freezes_the_living() -> None:
    with heap.loading():
        stopped, running = Cycle(), Cycle()
    gone = weakref.ref(stopped)
    del stopped
    heap.machines_stopped()
    assert gone() is None
    assert gc.get_freeze_count() > 0
    assert running.me is running


ARENAS_PROBE = """
import ctypes, sys, threading
from steward.daemon.heap import limit_malloc_arenas
print(limit_malloc_arenas() if sys.argv[1] == "limit" else "-")
def reserved():  # glibc reserves 64 MiB of address space (---p, unnamed) per thread arena
    count = 0
    for line in open("/proc/self/maps"):
        fields = line.split()
        low, high = (int(x, 16) for x in fields[0].split("-"))
        count += fields[1] == "---p" and len(fields) == 5 and high - low > 1 << 20
    return count
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
before = reserved()
threads = [threading.Thread(target=lambda: [libc.malloc(64) for _ in range(100)]) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(reserved() - before)
"""


def arenas_probe(mode: str, **env: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", ARENAS_PROBE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), **env},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_threads_share_the_one_malloc_arena() -> None:
    assert arenas_probe("free")[1] != "0"  # each allocating thread: an arena of its own
    assert arenas_probe("limit") == ["True", "0"]


def test_an_operators_malloc_arena_max_stands() -> None:
    assert arenas_probe("limit", MALLOC_ARENA_MAX="4")[0] == "False"
