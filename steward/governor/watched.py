"""What a watcher (exec, archive) does with Choria's ``governor`` and ``governor_timeout``:
read them at load, and run its work while holding a slot. No NATS import until a governed
run takes a slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from steward.governor.names import check_name, name_problem

if TYPE_CHECKING:
    from steward.governor.slots import Slot
    from steward.machine.source import Fields
    from steward.templates import Template
    from steward.watchers.base import Watcher

GOVERNOR_TIMEOUT = 300.0  # seconds a run waits for a slot (Choria: 5 minutes; 0 means this)


def read_governor_timeout(fields: Fields, governor: Template | None) -> float:
    """Check a static ``governor`` name (at its position) and read ``governor_timeout``."""
    if governor is not None and governor.static:
        problem = name_problem(governor.source)
        if problem is not None:
            fields.error("governor", problem)
    return fields.duration("governor_timeout", minimum=0) or GOVERNOR_TIMEOUT


@asynccontextmanager
async def slot_for(watcher: Watcher, governor: str, max_wait: float) -> AsyncIterator[Slot]:
    """Hold a slot in ``governor`` for ``watcher``'s run, on the daemon's connection; given
    back however the block ends. GovernorError (a bad rendered name, no slot in time, no such
    governor) or NatsUnavailable."""
    from steward.governor.slots import holding  # the NATS client, only when governed

    check_name(governor)
    # Choria's campaign text, two spaces included: `governor view` shows the same on both
    holder = f"Auto Agent  {watcher.machine.name}#{watcher.name} @ {watcher.context.node.name}"
    async with holding(
        watcher.context.nats,
        governor,
        holder,
        max_wait=max_wait,
        clock=watcher.clock,
        rng=watcher.rng,
    ) as slot:
        yield slot
