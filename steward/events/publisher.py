"""Drain the outbox to NATS, in order, removing an event only once NATS confirmed it.

With a JetStream ``stream`` configured each event is published with ``Nats-Msg-Id`` = its
id and removed after the ack (so a retry after a crash is deduplicated by the server).
Publishes are pipelined, up to ``WINDOW`` in flight but never two of the same machine: if one
fails while later ones are stored, the retry repeats those later ones (JetStream drops the
repeats by id) and only events of other machines can have been stored ahead of the failed
one, so each machine's events stay in order in the stream. Without a stream, events go out on
core NATS and are removed after a successful flush. The publisher uses the daemon's NATS
connection (``steward.broker``) and waits while it is down; it never holds up a machine:
machines only write to the outbox. ``NoPublisher`` stands in when no NATS is configured.

After an outage (at each connect), what the outbox holds is a backlog: it is sent after a
random delay and at a bounded, adaptive rate (``DrainPace``). Events newer than the backlog
are live: those of machines with nothing left in the backlog go first, unpaced; those of a
machine whose backlog is still draining wait behind it, so each machine's events stay in
order in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from steward.broker.link import NatsLink
from steward.broker.settings import StreamLimits
from steward.clock import Clock, SystemClock
from steward.errors import StoreError
from steward.events.drain import DrainPace, DrainSettings, is_overload
from steward.events.outbox import Outbox, OutboxRow

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.api import StreamConfig

# nats-py is imported where it is used, not here: metrics and the pipeline import this module
# for NoPublisher, and a daemon without NATS never loads nats-py (nor, through it, aiohttp);
# with NATS, NatsConnection has imported it first (steward/broker/nats_import.py)

log = logging.getLogger("steward.events")

BATCH = 256
WINDOW = 128  # JetStream publishes awaiting their ack at once (at most one per machine)
PUBLISH_TIMEOUT = 5.0
LOOKUP_TIMEOUT = 1.0  # the stream look-up's first timeout; doubled per timeout, up to 5 s
BACKOFF_START = 0.5
BACKOFF_MAX = 10.0  # between publish attempts (a new connection starts over)


class Publisher(Protocol):
    """Delivers stored events beyond the node; what the daemon starts, stops and shows."""

    published: int

    def start(self) -> None: ...

    async def stop(self, grace: float) -> None: ...

    def status(self) -> dict[str, Any] | None: ...


class NoPublisher:
    """No NATS configured: nothing to deliver (the null publisher)."""

    published = 0

    def start(self) -> None:
        pass

    async def stop(self, grace: float) -> None:
        pass

    def status(self) -> dict[str, Any] | None:
        return None


class NatsPublisher:
    def __init__(
        self,
        nats: NatsLink,
        outbox: Outbox,
        changed: asyncio.Event,
        *,
        stream: str | None,
        stream_subjects: list[str],
        replicas: int = 1,
        limits: StreamLimits | None = None,
        drain: DrainSettings | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.published = 0
        self.overloads = 0  # publishes the broker refused as overloaded
        self._clock = clock or SystemClock()
        self._pace = DrainPace(
            drain or DrainSettings(), clock=self._clock, rng=rng or random.Random()
        )
        self._backlog_upto = 0  # rowid: events up to it are the backlog of the last outage
        self._backlog_from = 0.0  # monotonic: when to start on it (jitter)
        self._connection: int | None = None  # the connection the backlog was taken for
        self.stream = stream
        self._nats = nats
        self._outbox = outbox
        self._changed = changed  # set when events were stored: look at the outbox again
        self._subjects = stream_subjects
        self._replicas = replicas
        self._limits = limits or StreamLimits()
        self._task: asyncio.Task[None] | None = None
        self._compared = False  # the stream's settings were compared with the config

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nats-publisher")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The publisher only ends when stopped; anything else is a bug to make loud, since
        events would then wait in the outbox with nothing to say why."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self._nats.report(f"the NATS publisher stopped: {type(exc).__name__}: {exc}")
        log.error("the NATS publisher stopped; events stay in the outbox", exc_info=exc)

    async def stop(self, grace: float) -> None:
        """Give the publisher up to ``grace`` seconds to deliver what is left, then end it
        (the connection itself is the daemon's to close)."""
        if self._task is None:
            return
        if self._nats.connected:
            deadline = asyncio.get_running_loop().time() + grace
            while asyncio.get_running_loop().time() < deadline and self._nats.connected:
                stats = await self._outbox.outbox_stats()
                if stats.events == 0:
                    break
                await asyncio.sleep(0.05)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    # the loop --------------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = BACKOFF_START
        stream_checked = False
        while True:
            nc = await self._nats.client()  # waits while the connection is down
            self._changed.clear()
            try:
                if self._connection != self._nats.state.reconnects:
                    backoff = BACKOFF_START  # a new connection: no failure of the old one counts
                    # and the stream is looked up before the first publish: after a broker
                    # outage it may not have its leader yet (a publish would wait 5 s)
                    stream_checked = False
                    await self._take_backlog()
                if self.stream and not stream_checked:
                    await self._ensure_stream(nc)
                    stream_checked = True
                if self._backlog_upto:
                    error = await self._round_with_backlog(nc)
                else:
                    rows = await self._outbox.outbox_peek(BATCH)
                    if not rows:
                        await self._changed.wait()
                        continue
                    error = await self._deliver(nc, rows, live=False)
            except StoreError as exc:
                # e.g. the disk is full: what was sent stays in the outbox and is sent again
                # later (JetStream drops the repeat by its Nats-Msg-Id)
                self._nats.report(f"outbox: {exc}")
                error = exc
            if error is None:
                backoff = BACKOFF_START
                continue
            # looked up again after any failure: how a wiped store gets its stream back; and
            # the look-up waits for the stream's leader, so the retry is not sent into a stream
            # still electing one (test_cluster_failover.py: publishing resumed 7.3-7.6 s after
            # the leader's death in 3 of 3 runs; 6.4-12.2 s when a look-up did not wait)
            stream_checked = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _take_backlog(self) -> None:
        """A new connection: what the outbox holds now is the backlog; a big one is started
        after a random delay (``DrainPace.start_delay``)."""
        self._connection = self._nats.state.reconnects
        self._backlog_upto = await self._outbox.outbox_last_rowid()
        events = self._outbox.outbox_snapshot().events
        delay = self._pace.start_delay(events) if self._backlog_upto else 0.0
        self._backlog_from = self._clock.monotonic() + delay
        if self._backlog_upto:
            log.info(
                "delivering the outbox backlog",
                extra={"events": events, "after": round(delay, 2)},
            )

    async def _round_with_backlog(self, nc: Client) -> BaseException | None:
        """Live events that can go first, then (after the jitter) a paced slice of the
        backlog. The error if a publish failed."""
        live = await self._outbox.outbox_peek_live(self._backlog_upto, BATCH)
        if live and (error := await self._deliver(nc, live, live=True)) is not None:
            return error
        wait = self._backlog_from - self._clock.monotonic()
        if wait > 0:
            if not live:  # nothing else to do until the jitter is over or a new event comes
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()
            return None
        size = max(1, min(BATCH, int(self._pace.rate / 4)))  # sleeps of ~0.25 s at most
        rows = await self._outbox.outbox_peek(size, upto=self._backlog_upto)
        if not rows:
            self._backlog_upto = 0  # the backlog is delivered: back to plain order
            log.info("outbox backlog delivered", extra={})
            return None
        await self._pace.take(len(rows))
        return await self._deliver(nc, rows, live=False)

    async def _deliver(
        self, nc: Client, rows: list[OutboxRow], *, live: bool
    ) -> BaseException | None:
        """Publish ``rows`` and remove what NATS confirmed (a prefix of them); the error that
        stopped it, None if all went."""
        confirmed, error = await self._send(nc, rows)
        if confirmed:
            if live:
                await self._outbox.outbox_remove_rows([r.rowid for r in rows[:confirmed]])
            else:
                await self._outbox.outbox_remove(rows[confirmed - 1].rowid)
        if error is not None and is_overload(error):
            self.overloads += 1
            self._pace.overloaded()
        elif error is None and not live:
            self._pace.went_through()
        return error

    async def _send(self, nc: Client, rows: list[OutboxRow]) -> tuple[int, BaseException | None]:
        """Publish rows; how many of them (a prefix) NATS confirmed, and the error if any."""
        from nats.errors import Error as NatsError

        confirmed = 0
        error: BaseException | None = None
        try:
            if self.stream:
                js = nc.jetstream()
                for window in _windows(rows):
                    if len(window) == 1:  # no task and gather for one (a one-machine node)
                        await self._publish(js, window[0])
                        acks: list[object] = [None]
                    else:
                        acks = await asyncio.gather(
                            *(self._publish(js, row) for row in window), return_exceptions=True
                        )
                    for ack in acks:
                        if isinstance(ack, BaseException):
                            raise ack
                        confirmed += 1
                        self.published += 1
            else:
                for row in rows:
                    await nc.publish(row.subject, row.body, headers={"Nats-Msg-Id": row.event_id})
                await nc.flush(timeout=int(PUBLISH_TIMEOUT))
                confirmed = len(rows)
                self.published += len(rows)
        except (NatsError, TimeoutError, OSError) as exc:
            error = exc
            self._nats.report(f"publish failed: {type(exc).__name__}: {exc}")
        if confirmed:
            self._nats.succeeded(time.time())
        return confirmed, error

    async def _publish(self, js: Any, row: OutboxRow) -> None:
        await js.publish(
            row.subject,
            row.body,
            timeout=PUBLISH_TIMEOUT,
            stream=self.stream,
            headers={"Nats-Msg-Id": row.event_id},
        )

    async def _ensure_stream(self, nc: Client) -> None:
        """Look the stream up (create it if missing) until it answers with a leader.

        Done at the start, at each new connection and after any failed publish: the probe
        that keeps a node from publishing into a stream that cannot store yet (a cluster just
        restarted, a leader being elected), where a publish waits out its whole
        ``PUBLISH_TIMEOUT``. The look-up starts with a ``LOOKUP_TIMEOUT`` and doubles it after
        each timeout, so a node hears within a second or two that the stream is back, and a
        loaded broker still gets up to ``PUBLISH_TIMEOUT`` to answer; a look-up stores no
        message, so a short timeout costs the broker nothing but the request."""
        from nats.errors import Error as NatsError
        from nats.js.errors import NotFoundError

        assert self.stream is not None
        wanted = stream_config(self.stream, self._subjects, self._replicas, self._limits)
        timeout = LOOKUP_TIMEOUT
        backoff = BACKOFF_START
        while True:
            try:
                try:
                    info = await nc.jetstream(timeout=timeout).stream_info(self.stream)
                except NotFoundError:
                    # inside the outer try: a refused creation (e.g. the subjects overlap
                    # another stream, or fewer servers than replicas) is retried and
                    # reported, not the publisher's end
                    await nc.jetstream(timeout=PUBLISH_TIMEOUT).add_stream(wanted)
                    log.info(
                        "created JetStream stream",
                        extra={
                            "stream": self.stream,
                            "subjects": self._subjects,
                            "replicas": self._replicas,
                        },
                    )
                    return
                if has_leader(info):
                    if not self._compared:  # once: the look-up runs at every reconnect
                        self._compared = True
                        _warn_if_different(info.config, wanted)
                    return
                self._nats.report(f"JetStream stream {self.stream}: no leader yet")
            except TimeoutError as exc:  # nats-py's timeout is one too
                self._nats.report(f"JetStream stream {self.stream}: {exc} ({timeout:g}s)")
                timeout = min(timeout * 2, PUBLISH_TIMEOUT)
                continue  # the timeout was the wait
            except NatsError as exc:
                self._nats.report(f"JetStream stream {self.stream}: {exc}")
            await self._clock.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def status(self) -> dict[str, Any]:
        return {
            **(self._nats.status() or {}),
            "stream": self.stream,
            "published": self.published,
            "backlog": bool(self._backlog_upto),
            "drain_rate": self._pace.rate,
            "overloads": self.overloads,
        }


def stream_config(
    name: str, subjects: list[str], replicas: int, limits: StreamLimits
) -> StreamConfig:
    """The events stream as steward creates it: file storage, limits retention (the oldest
    events go when a limit is reached), ``replicas`` copies."""
    from nats.js.api import StreamConfig

    return StreamConfig(
        name=name,
        subjects=subjects,
        num_replicas=replicas,
        max_age=limits.max_age,
        max_bytes=limits.max_bytes,
        max_msgs_per_subject=limits.max_msgs_per_subject,
        duplicate_window=limits.duplicate_window,
    )


def has_leader(info: Any) -> bool:
    """Whether a stream (``nats.js.api.StreamInfo``) can store: on a cluster, it has a leader
    (a look-up can be answered while the stream's replicas still elect one)."""
    cluster = getattr(info, "cluster", None)
    return cluster is None or bool(cluster.leader)


def _warn_if_different(have: StreamConfig, wanted: StreamConfig) -> None:
    """An existing stream is used as it is (someone may have sized it on purpose); say where
    it differs from the config."""
    fields = ("num_replicas", "max_age", "max_bytes", "max_msgs_per_subject", "duplicate_window")
    differ = {
        f: (getattr(have, f), getattr(wanted, f))
        for f in fields
        if getattr(have, f) is not None and getattr(have, f) != getattr(wanted, f)
    }
    if differ:
        log.warning(
            "JetStream stream %s exists with other settings than configured (kept): %s",
            wanted.name,
            ", ".join(f"{f} {a} (configured {b})" for f, (a, b) in differ.items()),
            extra={"stream": wanted.name},
        )


def _windows(rows: list[OutboxRow]) -> Iterator[list[OutboxRow]]:
    """Consecutive runs of ``rows`` with at most WINDOW rows and one row per machine each."""
    window: list[OutboxRow] = []
    machines: set[str] = set()
    for row in rows:
        if row.machine in machines or len(window) >= WINDOW:
            yield window
            window, machines = [], set()
        window.append(row)
        machines.add(row.machine)
    if window:
        yield window
