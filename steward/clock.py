"""Time, injected: the runtime asks a Clock, so tests can drive time without sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

# asyncio (~10 ms of imports) is imported where SystemClock uses it: a daemon has it already,
# and the CLI reads the config (whose settings name a Clock) without an event loop


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for timestamps people read)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back (for intervals)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        """Call ``callback`` on the running loop after ``seconds``, unless cancelled first."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        import asyncio

        return asyncio.get_running_loop().call_later(seconds, callback)
