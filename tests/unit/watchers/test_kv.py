"""kv: properties with positions, and the check's outcomes over a small in-memory bucket.

The bucket here is a fake of the two nats-py calls a check makes (``key_value``, ``get``);
the real thing is exercised in tests/integration/test_kv.py against a real nats-server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import BucketNotFoundError, KeyNotFoundError

from steward.broker.link import ConnectionState
from steward.gjson import Path as GjsonPath
from steward.templates import Template
from steward.watchers.base import Outcome, WatcherResult
from steward.watchers.kv import KvProperties, KvWatcher, Mode
from tests.support.fakes import fake_context
from tests.support.machines import Handle, machine_yaml, messages, parse

# --- properties --------------------------------------------------------------------------------


def test_choria_defaults() -> None:
    props = parse(machine_yaml("kv", "bucket: MACHINES", "key: spec")).watchers[0].properties
    assert props == KvProperties(bucket="MACHINES", key=Template("spec"))
    assert props.mode is Mode.POLL
    assert props.bucket_prefix is True
    assert props.data_key({}, {}) == "MACHINES_spec"


def test_every_property() -> None:
    spec = parse(
        machine_yaml(
            "kv",
            "bucket: CONFIG",
            "key: nodes/web-1",
            "mode: watch",
            "bucket_prefix: false",
            "store_key: web",
            "on_successful_get: true",
            "on_matching_update: true",
            "query: roles.0",
            "republish_trigger: repub.CONFIG.nodes.web-1",
            "hiera_config: false",
        )
    )
    props = spec.watchers[0].properties
    assert props == KvProperties(
        bucket="CONFIG",
        key=Template("nodes/web-1"),
        mode=Mode.WATCH,
        bucket_prefix=False,
        store_key=Template("web"),
        on_successful_get=True,
        on_matching_update=True,
        query=GjsonPath.parse("roles.0"),
        republish_trigger=Template("repub.CONFIG.nodes.web-1"),
    )
    assert props.data_key({}, {}) == "web"


def test_store_key_keeps_the_bucket_prefix() -> None:
    props = parse(machine_yaml("kv", "bucket: B", "key: k", "store_key: s")).watchers[0].properties
    assert props.data_key({}, {}) == "B_s"


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            ["key: spec"],
            [
                "m.yaml:16:7: watchers[0].properties: "
                "missing required field 'watchers[0].properties.bucket'"
            ],
        ),
        (
            ["bucket: MACHINES"],
            [
                "m.yaml:16:7: watchers[0].properties: "
                "missing required field 'watchers[0].properties.key'"
            ],
        ),
        (
            ["bucket: B", "key: k", "mode: stream"],
            ["m.yaml:18:13: watchers[0].properties.mode: must be one of poll, watch, got 'stream'"],
        ),
        (
            ["bucket: B", "key: k", "query: 'spec|@reverse'"],
            [
                "m.yaml:18:14: watchers[0].properties.query: invalid GJSON path: "
                "'spec|@reverse': only keys, indexes, '#', wildcards and escapes are supported "
                "(no #(...) queries, @ modifiers or | pipes)"
            ],
        ),
        (
            ["bucket: B", "key: k", "query: a..b"],
            [
                "m.yaml:18:14: watchers[0].properties.query: invalid GJSON path: "
                "'a..b': empty key (two dots, or a leading or trailing dot)"
            ],
        ),
        (
            ["bucket: 'my bucket'", "key: 'a key'"],
            [
                "m.yaml:16:15: watchers[0].properties.bucket: "
                "not a bucket name: 'my bucket' (letters, digits, '-', '_')",
                "m.yaml:17:12: watchers[0].properties.key: not a valid key: 'a key' "
                "(letters, digits, '-', '/', '_', '=' and inner dots)",
            ],
        ),
        (
            ["bucket: B", "key: k", "hiera_config: true"],
            [
                "m.yaml:18:21: watchers[0].properties.hiera_config: "
                "true is not supported: steward does not resolve CCM hiera documents"
            ],
        ),
        (
            ["bucket: B", "key: k", "bucket_prefix: 'no'"],
            [
                "m.yaml:18:22: watchers[0].properties.bucket_prefix: must be true or false, "
                "not a string"
            ],
        ),
        (
            ["bucket: B", "key: k", "keys: [a]"],
            [
                "m.yaml:18:7: watchers[0].properties.keys: unknown field 'keys' in kv "
                "properties (known: bucket, bucket_prefix, hiera_config, key, mode, "
                "on_matching_update, on_successful_get, query, republish_trigger, store_key)"
            ],
        ),
    ],
)
def test_problems_carry_their_position(props: list[str], expected: list[str]) -> None:
    assert messages(machine_yaml("kv", *props)) == expected


def test_default_intervals() -> None:
    poll = parse(machine_yaml("kv", "bucket: B", "key: k")).watchers[0]
    watch = parse(machine_yaml("kv", "bucket: B", "key: k", "mode: watch")).watchers[0]
    assert KvWatcher(poll, Handle(Path()), fake_context()).interval == 30.0
    assert KvWatcher(watch, Handle(Path()), fake_context()).interval == 300.0


# --- the check, over an in-memory bucket --------------------------------------------------------


@dataclass
class Entry:
    value: bytes
    revision: int


class Bucket:
    """What a check asks of JetStream: ``key_value(bucket)`` and ``get(key)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.exists = True
        self.entries: dict[str, Entry] = {}
        self.revision = 0

    def put(self, key: str, value: bytes) -> None:
        self.revision += 1
        self.entries[key] = Entry(value, self.revision)

    async def key_value(self, bucket: str) -> Bucket:
        if not self.exists or bucket != self.name:
            raise BucketNotFoundError
        return self

    async def get(self, key: str) -> Entry:
        if key not in self.entries:
            raise KeyNotFoundError
        return self.entries[key]


class BucketLink:
    """A NatsLink whose JetStream is one in-memory bucket."""

    configured = True
    connected = True

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self.state = ConnectionState(connected=True)

    async def client(self) -> Any:
        raise AssertionError("a poll-mode check needs only jetstream()")

    async def jetstream(self) -> Any:
        return self.bucket

    def report(self, message: str) -> None:
        pass

    def status(self) -> dict[str, Any] | None:
        return None


def watcher(bucket: Bucket, *props: str, data: dict[str, Any] | None = None) -> KvWatcher:
    spec = parse(machine_yaml("kv", f"bucket: {bucket.name}", *props)).watchers[0]
    return KvWatcher(spec, Handle(Path(), data), fake_context(nats=BucketLink(bucket)))


async def test_a_put_is_stored_under_the_data_key_and_fires_success() -> None:
    bucket = Bucket("CONFIG")
    w = watcher(bucket, "key: colour")
    assert (await w.check()).outcome is Outcome.UNCHANGED  # never there: nothing happened
    bucket.put("colour", b'{"name": "green"}')
    result = await w.check()
    assert result.outcome is Outcome.SUCCESS
    assert result.data == {"CONFIG_colour": {"name": "green"}}
    assert result.payload["state"] == "changed"
    assert result.payload["revision"] == 1
    assert (await w.check()).outcome is Outcome.UNCHANGED


async def test_a_deleted_key_removes_the_data_and_fires_success_once() -> None:
    bucket = Bucket("CONFIG")
    bucket.put("colour", b"green")
    w = watcher(bucket, "key: colour")
    assert (await w.check()).data == {"CONFIG_colour": "green"}
    del bucket.entries["colour"]
    result = await w.check()
    assert result.outcome is Outcome.SUCCESS
    assert result.data_removed == ("CONFIG_colour",)
    assert result.payload["state"] == "deleted"
    assert (await w.check()).outcome is Outcome.UNCHANGED


async def test_the_first_check_seeds_from_the_machines_data() -> None:
    bucket = Bucket("CONFIG")
    bucket.put("spec", b'{"a": [1, 2]}')
    same = watcher(bucket, "key: spec", data={"CONFIG_spec": {"a": [1, 2]}})
    assert (await same.check()).outcome is Outcome.UNCHANGED  # a restart is not a change
    other = watcher(bucket, "key: spec", data={"CONFIG_spec": {"a": [1]}})
    assert (await other.check()).outcome is Outcome.SUCCESS
    gone = watcher(Bucket("CONFIG"), "key: spec", data={"CONFIG_spec": "old"})
    result = await gone.check()  # deleted while the daemon was down
    assert (result.outcome, result.data_removed) == (Outcome.SUCCESS, ("CONFIG_spec",))


async def test_on_successful_get_and_on_matching_update() -> None:
    bucket = Bucket("B")
    bucket.put("k", b"v")
    every = watcher(bucket, "key: k", "on_successful_get: true")
    assert [(await every.check()).outcome for _ in range(2)] == [Outcome.SUCCESS] * 2
    matching = watcher(bucket, "key: k", "on_matching_update: true")
    assert (await matching.check()).outcome is Outcome.SUCCESS  # new to this watcher
    assert (await matching.check()).outcome is Outcome.UNCHANGED
    bucket.put("k", b"v")  # the same value, written again
    result = await matching.check()
    assert (result.outcome, result.payload["state"]) == (Outcome.SUCCESS, "matching_update")


async def test_a_query_that_cannot_apply_is_an_error_and_changes_nothing() -> None:
    bucket = Bucket("B")
    bucket.put("k", b'{"spec": {"v": 1}}')
    w = watcher(bucket, "key: k", "query: spec.v")
    assert (await w.check()).data == {"B_k": 1}
    bucket.put("k", b"plain text")
    result = await w.check()
    assert result.outcome is Outcome.ERROR
    assert (
        result.detail == "B.k: query 'spec.v' needs a JSON object or array, but the value is text"
    )
    assert result.data is None and result.data_removed == ()
    bucket.put("k", b'{"spec": {"v": 1}}')
    assert (await w.check()).outcome is Outcome.UNCHANGED  # the error did not forget the value


async def test_a_missing_bucket_is_an_error_retried_with_backoff() -> None:
    bucket = Bucket("B")
    bucket.exists = False
    w = watcher(bucket, "key: k")
    result: WatcherResult = await w.check()
    assert (result.outcome, result.detail) == (Outcome.ERROR, "bucket 'B' does not exist")
    assert result.payload["error"] == "bucket 'B' does not exist"
    assert w._retry is not None  # woken again after 1s, 2s, 4s …
    bucket.exists = True
    bucket.put("k", b"v")
    assert (await w.check()).outcome is Outcome.SUCCESS
    assert w._failures == 0


async def test_without_nats_the_check_fails_cleanly() -> None:
    spec = parse(machine_yaml("kv", "bucket: B", "key: k")).watchers[0]
    w = KvWatcher(spec, Handle(Path()), fake_context())
    result = await w.check()
    assert result.outcome is Outcome.ERROR
    assert result.detail.startswith("no NATS is configured")
