"""FleetFeed.load() when nats-py's end-of-snapshot marker comes before the entries.

nats-py's KV watch puts ``None`` (nothing left) before any entry when the consumer's messages
reached the client but not yet the watch as it asked the server how many were pending: a real
server cannot be made to lose that race on demand, so the watch here is a stand-in that yields
what nats-py yields then, in that order; the bucket's stream answers the subject look-up."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from steward.fleet.feed import FleetFeed, read_keys
from steward.fleet.state import machine_key, node_key


def entry(key: str, doc: dict[str, Any], delta: int) -> SimpleNamespace:
    return SimpleNamespace(
        key=key, value=json.dumps(doc).encode(), delta=delta, created=None, operation=None
    )


NODE = entry(node_key("web1"), {"kind": "node", "node": "web1", "heartbeat": 1.0}, 0)
MACHINES = [
    entry(machine_key("web1", m), {"kind": "machine", "node": "web1", "machine": m}, d)
    for m, d in (("switch", 1), ("probe", 0))
]


class Watch:
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    async def __aiter__(self) -> AsyncIterator[Any]:
        for item in self.items:
            yield item

    async def stop(self) -> None:
        pass


class Bucket:
    """What FleetFeed uses of a nats-py KeyValue and JetStream context."""

    def __init__(self, watches: dict[str, list[Any]], subjects: dict[str, dict[str, int]]):
        self.watches = watches
        self.subjects = subjects  # subject filter -> the stream's subjects matching it
        self.lookups: list[str] = []

    async def watch(self, pattern: str) -> Watch:
        return Watch(self.watches[pattern])

    async def status(self) -> Any:
        info = SimpleNamespace(config=SimpleNamespace(name="KV_steward-fleet"))
        return SimpleNamespace(stream_info=info, bucket="steward-fleet")

    async def stream_info(self, name: str, subjects_filter: str) -> Any:
        assert name == "KV_steward-fleet"
        self.lookups.append(subjects_filter)
        return SimpleNamespace(state=SimpleNamespace(subjects=self.subjects[subjects_filter]))


async def test_the_marker_before_the_entries_does_not_end_the_snapshot() -> None:
    bucket = Bucket(
        {"*": [NODE, None], "*.*": [None, *MACHINES]},
        {"$KV.steward-fleet.*.*": {"$KV.steward-fleet.web1.switch": 1}},
    )
    feed = FleetFeed(bucket, bucket)  # type: ignore[arg-type]
    view = await feed.load()
    await feed.close()
    assert set(view.machines) == {("web1", "switch"), ("web1", "probe")}
    assert set(view.nodes) == {"web1"}
    assert bucket.lookups == ["$KV.steward-fleet.*.*"]  # only where the marker came first


async def test_a_pattern_the_bucket_has_no_key_for_ends_at_the_marker() -> None:
    bucket = Bucket({"*": [NODE, None], "*.*": [None]}, {"$KV.steward-fleet.*.*": {}})
    feed = FleetFeed(bucket, bucket)  # type: ignore[arg-type]
    view = await feed.load()
    await feed.close()
    assert (set(view.nodes), view.machines) == ({"web1"}, {})


async def test_read_keys_waits_for_the_entries_behind_an_early_marker() -> None:
    bucket = Bucket(
        {"web1.>": [None, *MACHINES]},
        {"$KV.steward-fleet.web1.>": {"$KV.steward-fleet.web1.switch": 1}},
    )
    entries = await read_keys(bucket, bucket, "web1.>")  # type: ignore[arg-type]
    assert [e.key for e in entries] == [machine_key("web1", "switch"), machine_key("web1", "probe")]


async def test_read_keys_of_a_pattern_with_no_key_is_empty() -> None:
    bucket = Bucket({"web9.>": [None]}, {"$KV.steward-fleet.web9.>": {}})
    assert await read_keys(bucket, bucket, "web9.>") == []  # type: ignore[arg-type]
