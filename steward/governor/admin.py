"""Managing governors: create or change one, list them, look inside, evict, reset, delete.

The stream is configured exactly as Choria's ``NewManager`` does (description, subject, a
message limit, DiscardNew, max age, file storage, limits retention, replicas, duplicate
window 0 — which the server turns into its default, capped at max age), so either tool
manages a governor the other made.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nats.js import api
from nats.js.errors import APIError, NotFoundError

from steward.errors import GovernorError
from steward.governor import jsapi
from steward.governor.names import (
    COLLECTIVE,
    STREAM_PREFIX,
    campaign_subject,
    check_name,
    stream_name,
)

if TYPE_CHECKING:
    from nats.aio.client import Client


@dataclass(frozen=True)
class GovernorInfo:
    name: str
    capacity: int
    expires: float  # seconds: a slot older than this is evicted (the stream's max age)
    replicas: int
    active: int  # slots taken now
    subject: str
    stream: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capacity": self.capacity,
            "expires": self.expires,
            "replicas": self.replicas,
            "active": self.active,
            "subject": self.subject,
            "stream": self.stream,
        }

    def same_settings(self, capacity: int, expires: float, replicas: int) -> bool:
        return (self.capacity, self.expires, self.replicas) == (capacity, expires, replicas)


@dataclass(frozen=True)
class Lease:
    """A taken slot: its sequence (the id ``evict`` takes), who holds it, since when."""

    seq: int
    holder: str
    since: datetime.datetime | None

    def age(self, now: datetime.datetime) -> float | None:
        return None if self.since is None else max(0.0, (now - self.since).total_seconds())


def stream_config(
    name: str, capacity: int, expires: float, replicas: int, collective: str = COLLECTIVE
) -> api.StreamConfig:
    return api.StreamConfig(
        name=stream_name(name),
        description=f"Concurrency Governor {name}",
        subjects=[campaign_subject(name, collective)],
        retention=api.RetentionPolicy.LIMITS,
        max_msgs=capacity,
        discard=api.DiscardPolicy.NEW,
        max_age=expires,
        storage=api.StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=0,
    )


async def info(client: Client, name: str) -> GovernorInfo:
    """GovernorError when there is no governor ``name``."""
    stream = stream_name(check_name(name))
    try:
        found = await client.jetstream().stream_info(stream)
    except NotFoundError as exc:
        raise GovernorError(f"no governor named {name!r} (no stream {stream})") from exc
    return _info(name, found)


def _info(name: str, found: api.StreamInfo) -> GovernorInfo:
    config = found.config
    return GovernorInfo(
        name=name,
        capacity=config.max_msgs if config.max_msgs is not None else -1,
        expires=config.max_age or 0.0,
        replicas=config.num_replicas or 1,
        active=found.state.messages,
        subject=(config.subjects or [""])[0],
        stream=config.name or stream_name(name),
    )


async def add(
    client: Client,
    name: str,
    capacity: int,
    expires: float,
    replicas: int = 1,
    *,
    update: bool = False,
    collective: str = COLLECTIVE,
) -> tuple[GovernorInfo, GovernorInfo | None]:
    """Create governor ``name``, or with ``update`` bring an existing one to these settings.

    Returns (now, before): ``before`` is None when it was created. An existing governor
    with other settings and no ``update`` is a GovernorError naming both.
    """
    js = client.jetstream()
    config = stream_config(check_name(name), capacity, expires, replicas, collective)
    subject = campaign_subject(name, collective)
    try:
        before = await info(client, name)
    except GovernorError:
        return _info(name, await js.add_stream(config)), None
    if before.same_settings(capacity, expires, replicas) and before.subject == subject:
        return before, before
    if not update:
        raise GovernorError(
            f"governor {name!r} exists with capacity {before.capacity}, expires "
            f"{before.expires:g}s, replicas {before.replicas}; add --force to change it to "
            f"capacity {capacity}, expires {expires:g}s, replicas {replicas}"
        )
    current = (await js.stream_info(stream_name(name))).config
    changed = current.evolve(
        description=config.description,
        subjects=[subject],
        max_msgs=capacity,
        max_age=expires,
        num_replicas=replicas,
        discard=api.DiscardPolicy.NEW,
    )
    try:
        return _info(name, await js.update_stream(changed)), before
    except APIError as exc:
        raise GovernorError(f"cannot update governor {name!r}: {exc.description}") from exc


async def names(client: Client, collective: str = COLLECTIVE) -> list[str]:
    """Every governor of ``collective``, sorted."""
    streams = await jsapi.stream_names(client, campaign_subject("*", collective))
    return sorted(s.removeprefix(STREAM_PREFIX) for s in streams)


async def leases(client: Client, name: str) -> list[Lease]:
    """The slots taken in governor ``name``, oldest first."""
    found = await info(client, name)
    js = client.jetstream()
    out: list[Lease] = []
    seq = 1
    while len(out) < found.active:
        try:
            msg = await js.get_msg(found.stream, seq=seq, subject=found.subject, next=True)
        except NotFoundError:
            break  # the rest left or aged out meanwhile
        assert msg.seq is not None
        out.append(Lease(msg.seq, (msg.data or b"").decode(errors="replace"), msg.time))
        seq = msg.seq + 1
    return out


async def evict(client: Client, name: str, seq: int) -> str:
    """Free slot ``seq`` of governor ``name``; the name of who held it."""
    found = await info(client, name)
    js = client.jetstream()
    try:
        msg = await js.get_msg(found.stream, seq=seq)
        await jsapi.delete_message(client, found.stream, seq)
    except NotFoundError as exc:
        raise GovernorError(f"governor {name!r} has no lease {seq}") from exc
    return (msg.data or b"").decode(errors="replace")


async def reset(client: Client, name: str) -> int:
    """Free every slot of governor ``name``; how many were taken."""
    found = await info(client, name)
    await client.jetstream().purge_stream(found.stream)
    return found.active


async def delete(client: Client, name: str) -> None:
    found = await info(client, name)
    await client.jetstream().delete_stream(found.stream)
