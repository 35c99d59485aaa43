"""A running machine: its current state, data and sequence, its watchers, and its queue.

Everything that can change a machine (a watcher result, a manual or subscribed transition)
goes through one queue processed by one task, so changes apply in order and a watcher never
waits for the machine. A transition is committed to the store before the in-memory state
moves; then the watchers are reconciled with the new state and the node is told, so that
subscribers and watchers waiting on a foreign state can react.

When the store fails (a full disk), the machine runs on in memory: what it could not write —
transitions with their events, and events on their own — waits in memory, in order and
bounded (``UNRECORDED_MAX``), and is written in that order as soon as the store works again
(tried every ``STORE_RETRY_EVERY`` and whenever the machine writes), before anything newer.
Only what overflows that bound, or what is still waiting when the daemon dies, is lost; a
``recording_resumed`` event says what was written late and what was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from steward.clock import Cancellable
from steward.errors import StoreError, TransitionRejected
from steward.events.envelope import Envelope, LifecycleStep
from steward.ids import uuid4_hex
from steward.machine.fsm import StateGraph
from steward.machine.history import Cause, HistoryEntry
from steward.machine.persistence import LateWrite, MachineStore, SavedMachine, TransitionRecord
from steward.machine.services import NodeServices
from steward.machine.spec import MachineSpec, WatcherSpec
from steward.watchers.base import Outcome, Watcher, WatcherResult

log = logging.getLogger("steward.machine")

STORE_ERROR_LOG_EVERY = 10.0  # seconds between two logs of a store error that persists
RECENT_HISTORY = 10  # transitions a running machine keeps in memory
STORE_RETRY_EVERY = 0.5  # seconds between attempts to write again after an error
UNRECORDED_MAX = 5000  # writes a machine keeps in memory while the store fails
LATE_CHUNK = 64  # late writes per transaction when the store works again (small: each
# commits on its own, so a nearly full disk takes the wait a chunk at a time)


class NodeLink(Protocol):
    """What a machine needs from the node it runs on."""

    def state_of(self, machine: str) -> str | None: ...

    def transitioned(self, machine: RunningMachine, transition: TransitionResult) -> None: ...

    def watchers_changed(self, machine: RunningMachine) -> None:
        """A watcher's outcome differs from its last one."""


@dataclass(frozen=True)
class TransitionResult:
    machine: str
    transition: str
    from_state: str
    to_state: str
    seq: int
    at: float
    cause: Cause
    changed: bool  # False for a self-transition, which changes and publishes nothing

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "transition": self.transition,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "seq": self.seq,
            "at": self.at,
            "cause": self.cause.text,
            "cause_detail": self.cause.as_dict(),
            "changed": self.changed,
        }


@dataclass(frozen=True)
class _Fire:
    transition: str
    cause: Cause
    future: asyncio.Future[TransitionResult] | None


@dataclass(frozen=True)
class _Result:
    watcher: Watcher
    result: WatcherResult
    version: int


@dataclass(frozen=True)
class _Resync:
    """Try to write the current state again (the store failed before)."""


class RunningMachine:
    """One machine on this node. ``start()`` to run, ``stop()`` to end.

    A node may run tens of thousands of these, so a machine holds little while it idles: no
    task of its own (a worker task drains its queue only while something waits in it), and
    what only a moving or failing machine needs (the queue, the history, the late writes, the
    logged rejections) is made on first use.
    """

    __slots__ = (
        "_clock",
        "_events",
        "_failed_at",
        "_format",
        "_gap",
        "_history",
        "_inbox",
        "_last_announced",
        "_last_outcomes",
        "_node",
        "_observer",
        "_rejections_logged",
        "_rng",
        "_running",
        "_starting",
        "_stopped",
        "_store",
        "_store_failures",
        "_store_logged_at",
        "_store_retry",
        "_unrecorded",
        "_watching",
        "_worker",
        "_writing_late",
        "data",
        "graph",
        "instance",
        "lost_transitions",
        "processes",
        "resumed",
        "seq",
        "since",
        "spec",
        "state",
        "state_version",
        "store_error",
        "transitions_fired",
        "transitions_rejected",
        "unrecorded_transitions",
        "watchers",
    )

    def __init__(self, spec: MachineSpec, *, node: NodeLink, services: NodeServices) -> None:
        self.spec = spec
        self._events = services.events
        self._format = services.events.format
        self._observer = services.observer
        self.graph = StateGraph.of(spec)
        self.instance = uuid4_hex()
        self._store = services.store
        self._node = node
        self._clock = services.clock
        self._rng = services.rng
        self.state = spec.initial_state
        self.since = 0.0
        self.seq = 0
        self.state_version = 0
        self.data: dict[str, Any] = {}
        self.resumed = False
        # the last transitions (with their causes), newest last: status, the fleet KV entry
        # (a tuple: a deque's one block is ~600 bytes, ~6 MB at 10,000 machines)
        self._history: tuple[HistoryEntry, ...] = ()
        self.transitions_fired = 0
        self.transitions_rejected = 0
        self._rejections_logged: set[tuple[str, str]] | None = None
        self.store_error: str | None = None
        self.unrecorded_transitions = 0  # since start: not written when they happened
        self.lost_transitions = 0  # since start: never written (the wait in memory overflowed)
        self._unrecorded: list[LateWrite] = []  # waiting for the store, oldest first
        self._writing_late: asyncio.Lock | None = None
        self._gap: list[int] = []  # seqs lost since the store last worked
        self._failed_at: float | None = None  # monotonic time of the last failed write
        self._store_failures = 0  # failed writes since the error was last logged
        self._store_logged_at: float | None = None
        self._store_retry: asyncio.Task[None] | None = None
        context = services.watcher_context(spec.name, self.instance)
        self.processes = context.processes
        self.watchers: list[Watcher] = []
        for w in spec.watchers:
            watcher_type = services.registry.get(w.type)
            if watcher_type is None:  # validated before; a registry mismatch is a bug
                raise ValueError(f"watcher type {w.type!r} is not registered")
            self.watchers.append(watcher_type(w, self, context))
        # the queue: items wait here, oldest first; a worker task runs while any do
        # (``_process``). Made when something is put, dropped when the worker ends; a list,
        # not a deque (~600 bytes): 10,000 timers firing at once make 10,000 queues of one
        self._inbox: list[_Fire | _Result | _Resync] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._starting: Cancellable | None = None  # the watchers' start (after splay)
        self._running = False  # started: the queue is processed
        self._watching = False
        self._stopped = False
        self._last_outcomes: dict[str, Outcome] = {}
        self._last_announced: dict[str, float] = {}

    @property
    def recent_history(self) -> Sequence[HistoryEntry]:
        """The last ``RECENT_HISTORY`` transitions (with their causes), oldest first."""
        return self._history

    def _remember(self, entries: Iterable[HistoryEntry]) -> None:
        self._history = (*self._history, *entries)[-RECENT_HISTORY:]

    # MachineHandle, as watchers see it ---------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def directory(self) -> Path:
        return self.spec.directory

    def data_snapshot(self) -> dict[str, Any]:
        return dict(self.data)

    def submit_result(self, watcher: Watcher, result: WatcherResult, version: int) -> None:
        self._observer.watcher_ran(self.name, watcher, result, watcher.last_duration or 0.0)
        self._put(_Result(watcher, result, version))

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Restore or initialise the saved state, then run the queue and (after splay) watchers."""
        await start_machines(self._store, [self])

    def restore(self, saved: SavedMachine | None, history: Iterable[HistoryEntry] = ()) -> None:
        """Take the saved state (``start``'s first half; ``start_machines`` does it for many
        machines with one query): the seq, the last transitions, and with ``resume`` the
        state, its time and the data."""
        now = self._clock.time()
        self.state, self.since = self.spec.initial_state, now
        if saved is None:
            return
        self.seq = saved.seq  # the sequence never goes back, even without resume
        # the last transitions survive a restart, with or without resume
        entries = list(history)
        if entries:
            self._remember(entries)
        if self.spec.resume and saved.state in self.spec.states:
            self.state, self.since, self.data = saved.state, saved.since, dict(saved.data)
            self.resumed = True
        elif self.spec.resume:
            log.warning(
                "saved state no longer exists; starting in the initial state",
                extra={"machine": self.name, "state": saved.state},
            )

    def saved(self) -> SavedMachine:
        """The row the store keeps for this machine now."""
        return SavedMachine(
            self.name, self.spec.version, self.state, self.since, self.seq, self.data
        )

    def run(self) -> None:
        """Process the queue from now on, and start the watchers (after splay) on the next
        turn of the loop. Call once, after ``restore`` and the state's first save."""
        self._running = True
        if self._inbox:
            self._wake_worker()
        self._starting = asyncio.get_running_loop().call_soon(self._after_start)

    async def stop(self) -> None:
        """Cancel the watchers (killing their processes), end what their commands left
        running, then stop the queue.

        Whoever waits on a queued or in-flight transition gets TransitionRejected. A store
        write already handed to the store thread still completes there; the database stays
        the truth the next start resumes from.
        """
        self._stopped = True
        self._watching = False
        if self._starting is not None:
            self._starting.cancel()
            self._starting = None
        await asyncio.gather(*(w.close() for w in self.watchers), return_exceptions=True)
        await self.processes.end()
        tasks = [t for t in (self._worker, self._store_retry) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = self._store_retry = None
        if self.store_error is not None or self._unrecorded:  # a last chance to write it all
            await self._resync()
        if self._unrecorded:
            waiting = [w.record.seq for w in self._unrecorded if w.record is not None]
            log.error(
                "stopping with %d transitions not recorded (the store still fails)",
                len(waiting),
                extra={"machine": self.name, "unrecorded": len(waiting), "error": self.store_error},
            )
        inbox, self._inbox = self._inbox, None
        for item in inbox or ():
            if isinstance(item, _Fire):
                self._abandon(item)

    def _abandon(self, item: _Fire) -> None:
        if item.future is not None and not item.future.done():
            item.future.set_exception(
                TransitionRejected(self.name, item.transition, self.state, "the machine stopped")
            )

    def _after_start(self) -> None:
        """The watchers start now, or after a random splay of up to ``splay_start``."""
        if self.spec.splay_start:
            delay = self._rng.uniform(0, self.spec.splay_start)
            self._starting = self._clock.call_later(delay, self._start_watchers)
        else:
            self._start_watchers()

    def _start_watchers(self) -> None:
        self._starting = None
        self._watching = True
        self._reconcile(state_entered=True)

    # requests --------------------------------------------------------------------------------
    async def fire(self, transition: str, cause: str | Cause = "manual") -> TransitionResult:
        """Fire a transition and wait until it is committed; TransitionRejected if invalid."""
        future: asyncio.Future[TransitionResult] = asyncio.get_running_loop().create_future()
        item = _Fire(transition, Cause.of(cause), future)
        if self._stopped:
            self._abandon(item)
        self._put(item)
        return await future

    def request(self, transition: str, cause: str | Cause) -> None:
        """Fire a transition without waiting (subscriptions)."""
        self._put(_Fire(transition, Cause.of(cause), None))

    def foreign_changed(self) -> None:
        """Another machine moved: watchers that depend on foreign states may (de)activate."""
        self._reconcile(state_entered=False)

    # the queue -------------------------------------------------------------------------------
    def _put(self, item: _Fire | _Result | _Resync) -> None:
        if self._inbox is None:
            self._inbox = []
        self._inbox.append(item)
        if self._running and not self._stopped and self._worker is None:
            self._wake_worker()

    def _wake_worker(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(
            self._process(), name=f"machine:{self.name}"
        )

    async def _process(self) -> None:
        """Apply the queued items in order, one at a time, until none is left; then end (the
        next ``_put`` starts another worker)."""
        inbox = self._inbox
        try:
            while inbox:
                item = inbox.pop(0)
                try:
                    if isinstance(item, _Result):
                        await self._apply_result(item)
                    elif isinstance(item, _Resync):
                        await self._resync()
                    else:
                        await self._fire(item)
                except asyncio.CancelledError:
                    if isinstance(item, _Fire):
                        self._abandon(item)
                    raise
                except Exception as exc:  # a bug must not stop the machine's queue for good
                    log.exception("machine queue item failed", extra={"machine": self.name})
                    if (
                        isinstance(item, _Fire)
                        and item.future is not None
                        and not item.future.done()
                    ):
                        item.future.set_exception(exc)
        finally:
            if self._worker is asyncio.current_task():
                self._worker = None
                if self._inbox is inbox and not inbox:
                    self._inbox = None

    async def _fire(self, item: _Fire) -> None:
        try:
            result = await self._transition(item.transition, item.cause)
        except (TransitionRejected, StoreError) as exc:
            if item.future is not None and not item.future.done():
                item.future.set_exception(exc)
            return
        if item.future is not None and not item.future.done():
            item.future.set_result(result)

    async def _apply_result(self, item: _Result) -> None:
        spec, result = item.watcher.spec, item.result
        extra = {"machine": self.name, "watcher": spec.name, "outcome": result.outcome.value}
        # a change of outcome is news; the same outcome again is only debug detail
        previous = self._last_outcomes.get(spec.name)
        self._last_outcomes[spec.name] = result.outcome
        level = logging.DEBUG
        if result.outcome is not previous and result.outcome is not Outcome.UNCHANGED:
            level = logging.WARNING if result.outcome is Outcome.ERROR else logging.INFO
        log.log(level, "watcher %s: %s", result.outcome.value, result.detail, extra=extra)
        if self._should_announce(item.watcher, result, changed=result.outcome is not previous):
            await self._emit(
                [
                    self._format.watcher(
                        machine=self.name,
                        version=self.spec.version,
                        instance=self.instance,
                        watcher=spec.name,
                        watcher_type=spec.type,
                        state=self.state,
                        outcome=result.outcome.value,
                        detail=result.detail,
                        payload=result.payload,
                        at=self._clock.time(),
                    )
                ]
            )
        if result.outcome is not previous and result.outcome is not Outcome.UNCHANGED:
            self._node.watchers_changed(self)
        if result.data or result.data_removed:
            await self._merge_data(result.data or {}, result.data_removed)
        transition = _transition_for(spec, result.outcome)
        if result.transition is not None and self.spec.transition(result.transition) is not None:
            transition = result.transition  # named by the result (nagios), and defined here
        if transition is None:
            return
        if item.version != self.state_version:
            log.debug(
                "dropped %s: the machine moved on while the check ran",
                transition,
                extra={**extra, "transition": transition},
            )
            return
        with contextlib.suppress(TransitionRejected, StoreError):
            await self._transition(transition, Cause.from_watcher(spec, result))

    def _should_announce(self, watcher: Watcher, result: WatcherResult, *, changed: bool) -> bool:
        """A watcher's state is published when its outcome changes, and again every
        ``announce_interval``; never for "unchanged", nor when the type suppresses it."""
        if result.outcome is Outcome.UNCHANGED or not watcher.announces(result):
            return False
        now = self._clock.monotonic()
        last = self._last_announced.get(watcher.name)
        every = watcher.spec.announce_interval
        if changed or last is None or (every is not None and now - last >= every):
            self._last_announced[watcher.name] = now
            return True
        return False

    async def _emit(self, envelopes: list[Envelope]) -> None:
        """Emit events; if the store fails (or older writes still wait), keep them in memory."""
        if self._unrecorded:  # behind what waits: never written before older writes
            self._events.hold(envelopes)
            self._keep_unrecorded(LateWrite(None, tuple(envelopes)))
            await self._resync(when_due=True)
            return
        try:
            await self._events.emit(envelopes)
        except StoreError as exc:
            self._keep_unrecorded(LateWrite(None, tuple(envelopes)))
            self._store_failed(exc)
            return
        if self.store_error is not None:
            await self._resync()

    async def announce(self, step: LifecycleStep, detail: Mapping[str, Any] | None = None) -> None:
        """Emit a lifecycle event for this machine."""
        await self._emit(
            [
                self._format.lifecycle(
                    machine=self.name,
                    version=self.spec.version,
                    instance=self.instance,
                    step=step,
                    at=self._clock.time(),
                    state=self.state,
                    detail=detail,
                )
            ]
        )

    async def _merge_data(self, values: Mapping[str, Any], removed: tuple[str, ...] = ()) -> None:
        self.data.update(values)
        for key in removed:
            self.data.pop(key, None)
        changed = frozenset((*values, *removed))
        for w in self.watchers:
            if w.active:
                w.data_changed(changed)  # a watcher that reads these keys may look again now
        try:
            await self._store.save_data(self.name, self.data, self._clock.time())
        except StoreError as exc:
            self._store_failed(exc)
            return
        if self.store_error is not None:
            await self._resync()

    async def _transition(self, name: str, cause: Cause) -> TransitionResult:
        current = self.state
        destination = self.graph.destination(name, current)
        if destination is None:
            self.transitions_rejected += 1
            self._observer.rejected(self.name, name)
            reason = self._rejection(name, current)
            # a level-triggered watcher repeats its transition every interval: say it once per
            # transition and state (status and metrics count every one)
            if self._rejections_logged is None:
                self._rejections_logged = set()
            first = (name, current) not in self._rejections_logged
            self._rejections_logged.add((name, current))
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "transition %s rejected: %s",
                name,
                reason,
                extra={
                    "machine": self.name,
                    "transition": name,
                    "state": current,
                    "cause": cause.text,
                },
            )
            raise TransitionRejected(self.name, name, current, reason)
        now = self._clock.time()
        if destination == current:
            return TransitionResult(self.name, name, current, current, self.seq, now, cause, False)
        record = TransitionRecord(
            self.name, self.spec.version, name, current, destination, self.seq + 1, now, cause
        )
        event = self._format.transition(
            machine=self.name,
            version=self.spec.version,
            instance=self.instance,
            transition=name,
            from_state=current,
            to_state=destination,
            seq=record.seq,
            at=now,
            cause=cause.text,
        )
        stored = await self._record(record, event)
        self.state, self.since, self.seq = destination, now, record.seq
        self._remember((record.entry(),))
        self.state_version += 1
        self.transitions_fired += 1
        log.info(
            "transition %s: %s -> %s",
            name,
            current,
            destination,
            extra={
                "machine": self.name,
                "transition": name,
                "from_state": current,
                "to_state": destination,
                "seq": record.seq,
                "cause": cause.text,
            },
        )
        result = TransitionResult(
            self.name, name, current, destination, record.seq, now, cause, True
        )
        # once the state moved in memory: the resync also saves the current state and data
        await self._resync(when_due=not stored)
        self._reconcile(state_entered=True)
        self._observer.transitioned(self.name, result)
        self._node.transitioned(self, result)
        return result

    async def _record(self, record: TransitionRecord, event: Envelope) -> bool:
        """Commit the transition with its event; if the store fails (or older writes still
        wait), keep both in memory and run on. True if committed now."""
        if self._unrecorded:  # behind what waits: never written before older writes
            self._events.hold([event])
            self._keep_unrecorded(LateWrite(record, (event,)))
            return False
        try:
            await self._events.commit_transition(self._store, record, event)
        except StoreError as exc:
            self._keep_unrecorded(LateWrite(record, (event,)))
            self._store_failed(exc)  # keep running in memory; the error is visible in status
            return False
        return True

    def _keep_unrecorded(self, write: LateWrite) -> None:
        """Keep a write for later; beyond ``UNRECORDED_MAX`` the oldest events-only write
        goes first, else the oldest transition (lost: its seq is reported)."""
        if write.record is not None:
            self.unrecorded_transitions += 1
        self._unrecorded.append(write)
        if len(self._unrecorded) <= UNRECORDED_MAX:
            return
        for i, waiting in enumerate(self._unrecorded):
            if waiting.record is None:
                del self._unrecorded[i]
                return
        lost = self._unrecorded.pop(0)
        assert lost.record is not None
        self._gap.append(lost.record.seq)
        self.lost_transitions += 1

    @property
    def unrecorded_waiting(self) -> int:
        """Transitions waiting in memory for the store."""
        return sum(1 for w in self._unrecorded if w.record is not None)

    def _rejection(self, name: str, state: str) -> str:
        if self.spec.transition(name) is None:
            names = ", ".join(dict.fromkeys(t.name for t in self.spec.transitions))
            return f"no transition named {name!r} (transitions: {names})"
        sources = [s for t in self.spec.transitions if t.name == name for s in t.sources]
        if not sources:
            return "it has no 'from' states"
        return f"valid only from {', '.join(dict.fromkeys(sources))}"

    def _store_failed(self, exc: StoreError) -> None:
        """Keep running in memory; log the error when it changes and then at most once every
        ``STORE_ERROR_LOG_EVERY`` seconds (not once per write); retry in the background."""
        now = self._clock.monotonic()
        self._store_failures += 1
        last = self._store_logged_at
        if self.store_error != str(exc) or last is None or now - last >= STORE_ERROR_LOG_EVERY:
            waiting = self.unrecorded_waiting
            log.error(
                "cannot record state: %s (%d failed writes, %d transitions waiting in memory)",
                exc,
                self._store_failures,
                waiting,
                extra={
                    "machine": self.name,
                    "error": str(exc),
                    "failed_writes": self._store_failures,
                    "unrecorded": waiting,
                    "lost": len(self._gap),
                },
            )
            self._store_logged_at = now
            self._store_failures = 0
        self.store_error = str(exc)
        self._failed_at = now
        if not self._stopped and (self._store_retry is None or self._store_retry.done()):
            self._store_retry = asyncio.get_running_loop().create_task(
                self._retry_store(), name=f"machine-store-retry:{self.name}"
            )

    async def _retry_store(self) -> None:
        """While the store fails, queue an attempt to write the current state now and then:
        a machine that does not move must still get back in line when space returns."""
        while self.store_error is not None and not self._stopped:
            await self._clock.sleep(STORE_RETRY_EVERY)
            self._put(_Resync())

    async def _resync(self, *, when_due: bool = False) -> None:
        """Write what waits in memory, in order, then the whole current state, data and seq;
        once that works, report what was written late and what was lost. ``when_due``: not
        sooner than ``STORE_RETRY_EVERY`` after the last failure (a busy machine would
        otherwise retry the whole wait at each transition)."""
        if self.store_error is None and not self._unrecorded:
            return
        failed_at = self._failed_at
        if (
            when_due
            and failed_at is not None
            and self._clock.monotonic() - failed_at < STORE_RETRY_EVERY
        ):
            return
        if self._writing_late is None:
            self._writing_late = asyncio.Lock()
        async with self._writing_late:  # one writer of the wait (lifecycle events come too)
            if self.store_error is None and not self._unrecorded:
                return
            late = [w.record.seq for w in self._unrecorded if w.record is not None]
            try:
                while self._unrecorded:
                    chunk = self._unrecorded[:LATE_CHUNK]
                    await self._events.catch_up(self._store, chunk)
                    for written in chunk:
                        if self._unrecorded and self._unrecorded[0] is written:
                            del self._unrecorded[0]
                await self._store.save(self.saved())
            except StoreError as exc:
                self._store_failed(exc)
                return
            lost, error = self._gap, self.store_error
            self._gap, self.store_error = [], None
            self._store_failures, self._store_logged_at, self._failed_at = 0, None, None
        detail: dict[str, Any] = {
            "unrecorded_transitions": len(lost),
            "recorded_late": len(late),
            "error": error,
        }
        if lost:
            detail["unrecorded_seq"] = [lost[0], lost[-1]]
        if late:
            detail["recorded_late_seq"] = [late[0], late[-1]]
        log.warning(
            "recording state again: %d transitions written late (seq %s), %d lost (seq %s)",
            len(late),
            f"{late[0]}-{late[-1]}" if late else "none",
            len(lost),
            f"{lost[0]}-{lost[-1]}" if lost else "none",
            extra={"machine": self.name, "seq": self.seq, **detail},
        )
        await self.announce(LifecycleStep.RECORDING_RESUMED, detail)

    # watchers --------------------------------------------------------------------------------
    def _should_run(self, spec: WatcherSpec) -> bool:
        if not spec.matches(self.state):
            return False
        return all(
            self._node.state_of(fs.machine_name) == fs.state for fs in spec.foreign_state_required
        )

    def _reconcile(self, *, state_entered: bool) -> None:
        if not self._watching:
            return
        for w in self.watchers:
            if self._should_run(w.spec):
                if not w.active or (state_entered and w.restart_on_state_entry):
                    w.activate()
            elif w.active:
                w.deactivate()

    # what people see -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.spec.version,
            "description": self.spec.description,
            "path": str(self.spec.path),
            "instance": self.instance,
            "state": self.state,
            "since": self.since,
            "seq": self.seq,
            "resumed": self.resumed,
            "states": list(self.spec.states),
            "available_transitions": self.graph.available(self.state),
            "transitions_fired": self.transitions_fired,
            "transitions_rejected": self.transitions_rejected,
            "store_error": self.store_error,
            "unrecorded_transitions": self.unrecorded_transitions,
            "unrecorded_waiting": self.unrecorded_waiting,
            "lost_transitions": self.lost_transitions,
            "last_transition": self.recent_history[-1].as_dict() if self.recent_history else None,
            "data": self.data,
            "watchers": [w.status() for w in self.watchers],
        }


async def start_machines(store: MachineStore, machines: Sequence[RunningMachine]) -> None:
    """``start()`` for many machines at once: one read of their saved states, one of the
    history of those that have one, and one write of their rows, instead of two or three
    round trips to the store thread each. Raises StoreError (then none of them runs)."""
    names = [m.name for m in machines]
    saved = await store.load_many(names)
    history = await store.history_many(list(saved), RECENT_HISTORY) if saved else {}
    for m in machines:
        m.restore(saved.get(m.name), history.get(m.name, ()))
    await store.save_many([m.saved() for m in machines])
    for m in machines:
        m.run()


def _transition_for(spec: WatcherSpec, outcome: Outcome) -> str | None:
    if outcome is Outcome.SUCCESS:
        return spec.success_transition
    if outcome in (Outcome.FAILURE, Outcome.ERROR):
        return spec.fail_transition
    return None
