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
"""

from __future__ import annotations

import gc
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
