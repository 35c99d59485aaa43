"""Hot reload: wake the daemon's rescan when a machine definition may have changed.

Three things wake one slot: inotify events on the machines directory and the directories in
it (``steward.daemon.inotify``), a full rescan every ``rescan_interval`` as a backstop for
anything inotify misses, and ``wake()`` (SIGHUP). One task drains the slot and awaits the
callback, so a burst of changes becomes one rescan, two rescans never run at once, and a
wake-up that arrives during a rescan gives exactly one more (Choria's one-slot channel).

Only a change that can change a definition wakes it (``DefinitionFilter``): ``machine.yaml``
in a machine directory, ``*.yaml``/``*.yml`` directly in the machines directory, and a machine
directory appearing, going or changing mode. Scripts and data beside a machine, files its
scripts write, hidden, temporary and editor swap files (``discovery.ignored``) never do.

Half-written files: a batch of events ends only after ``quiet`` seconds without one, and a
changed file whose mtime is younger than ``quiet`` (a slow ``cp`` still writing) is left to
settle before the rescan reads it. Whatever is still broken then is rejected by validation,
and the running version is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

from steward.daemon.inotify import Change, Inotify, merge
from steward.machine.discovery import MACHINE_FILE, SUFFIXES, ignored

log = logging.getLogger("steward.reload")

QUIET = 0.05  # seconds without an event that end a batch
MAX_BATCH = 1.0  # seconds: a batch of events never grows longer
MAX_SETTLE = 30.0  # seconds to wait for a file that keeps being written, then read it anyway

__all__ = ["Change", "DefinitionFilter", "MachinesWatch", "awatch"]


async def awatch(
    path: Path,
    *,
    watch_filter: Callable[[Change, str], bool],
    debounce: int,
    step: int,
    stop_event: asyncio.Event,
) -> AsyncIterator[set[tuple[Change, str]]]:
    """Batches of changes in the machines directory ``path`` (``steward.daemon.inotify``)
    that pass ``watch_filter``, until ``stop_event``: a batch ends after ``step`` ms without
    an event, or ``debounce`` ms after its first (watchfiles' ``awatch`` semantics).

    The watches are in place when this is first iterated, before its first ``await``."""
    loop = asyncio.get_running_loop()
    notify = Inotify(path)
    readable = asyncio.Event()
    loop.add_reader(notify.fd, readable.set)
    try:
        while await _readable_or_stopped(readable, stop_event):
            batch: dict[str, Change] = {}
            ends = loop.time() + debounce / 1000
            while True:
                readable.clear()
                merge(batch, notify.read())
                quiet = min(step / 1000, ends - loop.time())
                if quiet <= 0 or stop_event.is_set():
                    break
                try:
                    async with asyncio.timeout(quiet):
                        await readable.wait()
                except TimeoutError:
                    break
            changes = {(change, raw) for raw, change in batch.items() if watch_filter(change, raw)}
            if changes:
                yield changes
    finally:
        loop.remove_reader(notify.fd)
        notify.close()


async def _readable_or_stopped(readable: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait for the descriptor to be readable (True) or the stop (False)."""
    if not readable.is_set() and not stop.is_set():
        waits = [asyncio.ensure_future(readable.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
    return not stop.is_set()


class DefinitionFilter:
    """Which changes in the machines directory can change a machine definition.

    ``candidate`` judges a path by its shape alone (it runs on the event loop, as
    ``awatch``'s filter); ``select`` then looks at the disk for top-level entries (in a thread), and
    remembers the top-level directories so that a removed one is recognised.
    """

    def __init__(self, machines_dir: Path, directories: Iterable[str] = ()) -> None:
        self.machines_dir = machines_dir
        self.directories = set(directories)

    def candidate(self, change: Change, raw: str) -> bool:
        path = Path(raw)
        if path == self.machines_dir:  # the kernel's queue overflowed: anything may have changed
            return True
        if path.parent == self.machines_dir:
            return not ignored(path.name)
        return (
            path.name == MACHINE_FILE
            and path.parent.parent == self.machines_dir
            and not ignored(path.parent.name)
        )

    def select(self, changes: Iterable[tuple[Change, str]]) -> list[Path]:
        """The changed paths that matter, from ``awatch``'s ``(change, path)`` pairs."""
        out: list[Path] = []
        for change, raw in changes:
            path = Path(raw)
            if self.candidate(change, raw) and self._matters(change, path):
                out.append(path)
        return out

    def _matters(self, change: Change, path: Path) -> bool:
        if path.parent != self.machines_dir or path.suffix in SUFFIXES:
            return True  # <name>/machine.yaml, or a bare <name>.yaml
        if change == Change.deleted:
            if path.name in self.directories:
                self.directories.discard(path.name)
                return True
            return False  # a file a script deleted
        if path.is_dir():
            self.directories.add(path.name)
            return True  # a machine directory appeared, was renamed here, or changed mode
        return False  # a file beside bare machines (their scripts, what those write)


def top_level_directories(machines_dir: Path) -> set[str]:
    with contextlib.suppress(OSError), os.scandir(machines_dir) as entries:
        return {e.name for e in entries if e.is_dir() and not ignored(e.name)}
    return set()


def settle_time(paths: Iterable[Path], quiet: float, now: float | None = None) -> float:
    """Seconds until none of these files was written in the last ``quiet`` seconds (0: now)."""
    now = time.time() if now is None else now
    wait = 0.0
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue  # gone: nothing to wait for
        if not stat.S_ISREG(st.st_mode):
            continue
        age = now - st.st_mtime
        if 0 <= age < quiet:  # a future mtime (clock skew, cp -p) tells nothing
            wait = max(wait, quiet - age)
    return wait


class MachinesWatch:
    """Calls ``on_change`` (the daemon's rescan) when the machines directory may have changed.

    ``start()`` sets up the inotify watch before it returns and then wakes once, to catch what
    changed between the caller's own scan and the watch; ``stop()`` lets a running callback
    finish and starts no other.
    """

    def __init__(
        self,
        machines_dir: Path,
        on_change: Callable[[], Awaitable[None]],
        *,
        rescan_interval: float,
        quiet: float = QUIET,
        max_batch: float = MAX_BATCH,
        max_settle: float = MAX_SETTLE,
    ) -> None:
        self.machines_dir = machines_dir
        self.rescan_interval = rescan_interval
        self.quiet = quiet
        self.max_batch = max_batch
        self.max_settle = max_settle
        self._on_change = on_change
        self._filter = DefinitionFilter(machines_dir)
        self._wake = asyncio.Event()  # the one slot
        self._stopping = asyncio.Event()
        self._pending: set[Path] = set()  # changed files the next rescan will read
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._filter.directories = await asyncio.to_thread(top_level_directories, self.machines_dir)
        self._tasks = [
            asyncio.create_task(self._inotify(), name="steward-reload-inotify"),
            asyncio.create_task(self._backstop(), name="steward-reload-backstop"),
            asyncio.create_task(self._dispatch(), name="steward-reload-dispatch"),
        ]
        # awatch adds its inotify watches synchronously before its first await: one turn of
        # the loop and the inotify task has them in place
        await asyncio.sleep(0)
        self.wake()

    def wake(self) -> None:
        """Ask for a rescan (coalesced with any already asked for). Safe from a signal handler."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # the three tasks -----------------------------------------------------------------------
    async def _inotify(self) -> None:
        try:
            async for changes in awatch(
                self.machines_dir,
                watch_filter=self._filter.candidate,
                debounce=round(self.max_batch * 1000),
                step=round(self.quiet * 1000),
                stop_event=self._stopping,
            ):
                paths = await asyncio.to_thread(self._filter.select, changes)
                if paths:
                    log.debug(
                        "machines directory changed",
                        extra={"paths": sorted(str(p) for p in paths)},
                    )
                    self._pending.update(paths)
                    self.wake()
        except (OSError, RuntimeError) as exc:
            log.error(
                "cannot watch %s for changes: %s; changes are picked up by the full rescan "
                "every %gs",
                self.machines_dir,
                exc,
                self.rescan_interval,
                extra={"machines_dir": str(self.machines_dir), "error": str(exc)},
            )

    async def _backstop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.rescan_interval):  # not wait_for: see exec.py
                    await self._stopping.wait()
                return
            except TimeoutError:
                self.wake()

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            if self._stopping.is_set():
                return
            await self._settle()
            if self._stopping.is_set():  # stop() set the wake-up during the settle: not lost
                return
            self._wake.clear()
            self._pending.clear()
            try:
                await self._on_change()
            except Exception:  # the watch must outlive one failed rescan; the next one retries
                log.exception("rescan failed")

    async def _settle(self) -> None:
        """Wait while a changed file is still being written (at most ``max_settle``)."""
        deadline = time.monotonic() + self.max_settle
        while not self._stopping.is_set() and time.monotonic() < deadline:
            wait = await asyncio.to_thread(settle_time, list(self._pending), self.quiet)
            if wait <= 0:
                return
            await asyncio.sleep(wait)
