"""The cyclic garbage collector around the machines' objects.

Loading 10,000 machines makes a few million long-lived objects (specs, machines, watchers)
and almost no cyclic garbage (42 objects, measured). Each full collection walks every one of
them: during the load that was ~0.7 s of ~4 s, and the first ``GET /v1/status`` after it
paid ~0.2 s for one more. So the collector is off while the daemon loads, and what the load
made is then frozen (``gc.freeze``: moved where collections never look).

Frozen objects are never collected, so machines stopped later (a reload, a removed file)
would never be freed (a machine and its watchers refer to each other): a rescan that stopped
machines unfreezes everything, collects once, and freezes what lives on. A daemon that stops
unfreezes everything (a process running daemons one after another, as the tests do, gets
back all they made).

The collector is the process's: several daemons in one process (tests) share it, which only
changes when garbage is collected, never what is.

``limit_malloc_arenas``: ``steward run`` keeps glibc's malloc to one arena (issue 19).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading() -> Iterator[None]:
    """No cyclic collection while the block loads the machines; what it made is then frozen."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def machines_stopped() -> None:
    """Machines stopped: collect what they left (frozen or not), freeze what lives on."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def released() -> None:
    """The daemon stopped: every object is the collector's again."""
    gc.unfreeze()


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
MALLOC_ARENAS = 1  # the daemon's threads: the loop, the store's, short executor work


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas, as ``MALLOC_ARENA_MAX`` would (unless that is set: the
    operator's choice stands). glibc gives each thread that allocates its own arena, up to
    eight per core, each with its own free lists and a resident part that is never trimmed
    back; the daemon's few threads do little of its allocation (pymalloc takes most of it
    from the main thread's arena), so one arena serves them at no measured cost in speed.
    False where it cannot (not glibc)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    import ctypes  # loaded already: the reaper sets the subreaper flag through it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas) == 1)
