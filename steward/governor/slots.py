"""Taking a slot in a governor and giving it back, as Choria's workers do.

A worker publishes a campaign message (its name, say ``Auto Agent  m#w @ node``) to the
governor's subject. The stream keeps at most ``capacity`` messages and refuses new ones when
full (DiscardNew), so an acknowledged publish is a slot, identified by its stream sequence;
a refusal (JetStream error 10077) means "full, try again later". The worker deletes its
message when done; a worker that never does (killed) loses it when the stream's max age
evicts it.

Retries follow Choria: the first try at once, the next after ``first``, then each after a
jittered step of the backoff. One difference, on purpose: a try whose reply is lost (a
timeout) is retried with the same ``Nats-Msg-Id``, so if the first publish did take a slot,
JetStream's duplicate detection answers with that slot instead of a second one. Choria gives
up on a lost reply and the slot it may hold stays taken until max age.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import nats.errors
from nats.js.errors import APIError, NoStreamResponseError

from steward.clock import Clock
from steward.errors import GovernorError, NatsUnavailable, NoSlot
from steward.governor import jsapi
from steward.governor.names import COLLECTIVE, campaign_subject, check_name
from steward.ids import uuid4_hex

if TYPE_CHECKING:
    from nats.aio.client import Client

log = logging.getLogger("steward.governor")

TRY_TIMEOUT = 1.0  # seconds one campaign publish waits for its ack (Choria: 1s)
LEAVE_TIMEOUT = 2.0  # seconds to give a slot back before leaving it to max age


class ClientSource(Protocol):
    """Where the connection comes from: the daemon's ``NatsLink``, or the CLI's client."""

    async def client(self) -> Client: ...


class ConnectedClient:
    """A ClientSource over a client its caller connected (the CLI)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def client(self) -> Client:
        return self._client


@dataclass(frozen=True)
class Backoff:
    """When to try again: ``first`` seconds after the first try, then ``steps[n]`` jittered
    to [step/2, 3·step/2) (Choria's ``backoff.Policy``), the last step repeating."""

    first: float
    steps: tuple[float, ...] = ()

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 is the first retry)."""
        if retry <= 1 or not self.steps:
            return self.first
        step = self.steps[min(retry - 1, len(self.steps) - 1)]
        return step / 2 + rng.random() * step


# Choria's watchers: 250 ms, then backoff.FiveSec (0.5 s … 5 s)
WATCHER_BACKOFF = Backoff(0.25, (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0))


@dataclass(frozen=True)
class Slot:
    governor: str
    stream: str
    seq: int


async def join(
    source: ClientSource,
    governor: str,
    holder: str,
    *,
    max_wait: float,
    clock: Clock,
    rng: random.Random,
    backoff: Backoff = WATCHER_BACKOFF,
    collective: str = COLLECTIVE,
) -> Slot:
    """A slot in ``governor``, taken within ``max_wait`` seconds (waiting for the connection
    counts). NoSlot when the time runs out; GovernorError when the governor cannot be used;
    NatsUnavailable when no NATS is configured."""
    check_name(governor)
    subject = campaign_subject(governor, collective)
    headers = {"Nats-Msg-Id": f"steward-{uuid4_hex()}"}  # one per join, kept by retries
    why = "waiting for the NATS connection"
    tries = 0
    try:
        async with asyncio.timeout(max_wait):
            while True:
                client = await source.client()  # waits while the connection is down
                tries += 1
                try:
                    ack = await client.jetstream().publish(
                        subject, holder.encode(), timeout=TRY_TIMEOUT, headers=headers
                    )
                except nats.errors.TimeoutError:
                    why = "no answer from NATS"
                except NoStreamResponseError as exc:
                    raise GovernorError(
                        f"no governor {governor!r}: nothing answers on {subject} "
                        f"(create it with: steward governor add {governor} CAPACITY EXPIRE)"
                    ) from exc
                except APIError as exc:
                    if jsapi.error_code(exc) != jsapi.STORE_FAILED:
                        raise GovernorError(
                            f"governor {governor!r} refused the campaign: {exc.description}"
                        ) from exc
                    why = "it stayed full"
                except nats.errors.Error as exc:  # the connection closed or broke mid-way
                    why = f"NATS: {exc}"
                else:
                    log.info("got slot %d in governor %s", ack.seq, governor)
                    return Slot(governor, ack.stream, ack.seq)
                await clock.sleep(backoff.delay(tries, rng))
    except TimeoutError:
        raise NoSlot(
            f"no slot in governor {governor!r} within {max_wait:g}s: {why} ({tries} tries)"
        ) from None


async def leave(source: ClientSource, slot: Slot) -> bool:
    """Give ``slot`` back; False (logged) when that fails: max age evicts it then."""
    try:
        async with asyncio.timeout(LEAVE_TIMEOUT):
            client = await source.client()
            await jsapi.delete_message(client, slot.stream, slot.seq)
    except APIError as exc:
        if jsapi.is_gone(exc):
            return True  # evicted or aged out already: the slot is free either way
        log.warning("cannot leave governor %s slot %d: %s", slot.governor, slot.seq, exc)
        return False
    except (TimeoutError, NatsUnavailable, nats.errors.Error) as exc:
        why = str(exc) or type(exc).__name__
        log.warning("cannot leave governor %s slot %d: %s", slot.governor, slot.seq, why)
        return False
    log.info("left governor %s slot %d", slot.governor, slot.seq)
    return True


@asynccontextmanager
async def holding(
    source: ClientSource,
    governor: str,
    holder: str,
    *,
    max_wait: float,
    clock: Clock,
    rng: random.Random,
    backoff: Backoff = WATCHER_BACKOFF,
    give_back: bool = True,
    collective: str = COLLECTIVE,
) -> AsyncIterator[Slot]:
    """Hold a slot in ``governor`` for the body; given back however the body ends (an
    error, a cancellation) unless ``give_back`` is False (Choria's ``--max-per-period``)."""
    slot = await join(
        source,
        governor,
        holder,
        max_wait=max_wait,
        clock=clock,
        rng=rng,
        backoff=backoff,
        collective=collective,
    )
    try:
        yield slot
    finally:
        if give_back:
            await leave(source, slot)
