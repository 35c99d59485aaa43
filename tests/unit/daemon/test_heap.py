"""The collector around loading: off while loading, what the load made frozen; a rescan that
stopped machines and a daemon that stops give frozen garbage back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from steward.daemon import heap


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
