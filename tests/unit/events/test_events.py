"""Events: the formats, the local fan-out, the emitter and its sinks, the SQLite outbox, and
what a running machine emits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from steward.errors import StoreError
from steward.events.emitter import Emitter, LocalOnly, OutboxSink
from steward.events.envelope import Envelope, EventKind, LifecycleStep, subject_token
from steward.events.formats import (
    ChoriaFormat,
    EventFormat,
    StewardFormat,
    event_format,
    parse_event,
)
from steward.events.local import SUBSCRIBER_QUEUE, LocalEvents
from steward.events.outbox import OutboxLimits, OutboxRow
from steward.events.publisher import WINDOW
from steward.events.publisher import _windows as publisher_windows
from steward.machine.history import Cause
from steward.machine.persistence import SavedMachine, SqliteStore, TransitionRecord
from steward.watchers.base import Outcome
from tests.support.fakes import FakeStore, settle
from tests.support.machines import machine_spec, w

AT = 1_700_000_000.25


def transition_event(builder: EventFormat, seq: int = 1, machine: str = "web") -> Envelope:
    return builder.transition(
        machine=machine,
        version="1.2.3",
        instance="abc",
        transition="up",
        from_state="a",
        to_state="b",
        seq=seq,
        at=AT,
        cause="manual",
    )


def test_transition_event_is_a_cloudevent_with_the_documented_fields() -> None:
    env = transition_event(StewardFormat("node-1"))
    event = parse_event(env.body)
    assert env.kind is EventKind.TRANSITION
    assert env.subject == "steward.events.node-1.web.transition"
    assert event.get_id() == env.id
    assert event.get_specversion() == "1.0"
    assert event.get_type() == "io.steward.machine.v1.transition"
    assert event.get_source() == "steward://node-1"
    assert event.get_subject() == "web"
    assert event.get_data() == {
        "node": "node-1",
        "machine": "web",
        "machine_version": "1.2.3",
        "instance": "abc",
        "timestamp": "2023-11-14T22:13:20.250000Z",
        "transition": "up",
        "from_state": "a",
        "to_state": "b",
        "seq": 1,
        "cause": "manual",
    }


def test_every_event_gets_its_own_id() -> None:
    builder = StewardFormat("n")
    assert transition_event(builder).id != transition_event(builder).id


def test_subject_tokens_outside_the_safe_set_become_underscores() -> None:
    env = transition_event(StewardFormat("db.example.com"), machine="my machine*")
    assert env.subject == "steward.events.db_example_com.my_machine_.transition"
    assert subject_token("") == "_"


def test_watcher_and_lifecycle_events() -> None:
    builder = StewardFormat("n", prefix="ops.events")
    watcher = builder.watcher(
        machine="web",
        version="1.0.0",
        instance="i",
        watcher="probe",
        watcher_type="exec",
        state="up",
        outcome="failure",
        detail="exit code 1",
        payload={"command": "check.sh", "exit_code": 1},
        at=AT,
    )
    assert watcher.subject == "ops.events.n.web.watcher.probe"
    data = parse_event(watcher.body).get_data()
    assert isinstance(data, dict)
    assert parse_event(watcher.body).get_type() == "io.steward.machine.watcher.exec.v1.state"
    assert (data["watcher"], data["outcome"], data["state"]["exit_code"]) == ("probe", "failure", 1)
    life = builder.lifecycle(
        machine="web", version="1.0.0", instance="i", step=LifecycleStep.RESUMED, at=AT, state="up"
    )
    assert life.subject == "ops.events.n.web.lifecycle"
    life_data = parse_event(life.body).get_data()
    assert isinstance(life_data, dict)
    assert (life_data["step"], life_data["state"]) == ("resumed", "up")


def test_choria_format_uses_choria_types_and_subjects() -> None:
    builder = ChoriaFormat("node-1")
    env = transition_event(builder)
    event = parse_event(env.body)
    assert env.subject == "choria.machine.transition"
    assert event.get_type() == "io.choria.machine.v1.transition"
    assert event.get_source() == "io.choria.machine"
    data = event.get_data()
    assert isinstance(data, dict)
    assert data["protocol"] == "io.choria.machine.v1.transition"
    assert (data["identity"], data["machine"], data["to_state"]) == ("node-1", "web", "b")
    watcher = builder.watcher(
        machine="web",
        version="1",
        instance="i",
        watcher="probe",
        watcher_type="exec",
        state="up",
        outcome="success",
        detail="",
        payload={"command": "x", "previous_outcome": None},
        at=AT,
    )
    assert watcher.subject == "choria.machine.watcher.exec.state"
    assert parse_event(watcher.body).get_type() == "io.choria.machine.watcher.exec.v1.state"
    assert builder.stream_subjects() == ["choria.machine.>"]


async def test_local_events_fan_out_to_matching_subscribers_and_bound_slow_ones() -> None:
    builder = StewardFormat("n")
    hub = LocalEvents()
    everything = hub.subscribe()
    only_db = hub.subscribe(machine="db")
    only_life = hub.subscribe(kind=EventKind.LIFECYCLE)
    events = [transition_event(builder, seq=i, machine="web") for i in range(SUBSCRIBER_QUEUE + 5)]
    hub.deliver(events)
    assert hub.emitted == len(events)
    assert everything.queue.qsize() == SUBSCRIBER_QUEUE
    assert everything.dropped == 5
    assert (await everything.next()).id == events[5].id  # the oldest were dropped
    assert only_db.queue.empty() and only_life.queue.empty()
    assert [e.id for e in hub.recent(limit=2)] == [e.id for e in events[-2:]]
    everything.close()
    hub.deliver([events[0]])
    assert everything.queue.qsize() == SUBSCRIBER_QUEUE - 1


async def test_without_nats_the_emitter_stores_nothing_and_delivers_locally() -> None:
    emitter = Emitter(StewardFormat("n"), LocalOnly(), LocalEvents())
    await emitter.emit([transition_event(emitter.format)])
    assert len(emitter.local.recent()) == 1


async def test_the_outbox_sink_stores_then_wakes_the_publisher() -> None:
    store = FakeStore()
    sink = OutboxSink(store)
    emitter = Emitter(StewardFormat("n"), sink, LocalEvents())
    event = transition_event(emitter.format)
    await emitter.emit([event])
    assert store.outbox == [event]
    assert sink.changed.is_set()
    assert [e.id for e in emitter.local.recent()] == [event.id]


async def test_an_event_the_outbox_refused_is_still_delivered_locally() -> None:
    store = FakeStore()
    store.fail_with = StoreError("disk full")
    sink = OutboxSink(store)
    emitter = Emitter(StewardFormat("n"), sink, LocalEvents())
    with pytest.raises(StoreError):
        await emitter.emit([transition_event(emitter.format)])
    assert store.outbox == []
    assert not sink.changed.is_set()
    assert len(emitter.local.recent()) == 1


def test_event_format_by_name() -> None:
    assert isinstance(event_format("steward", "n", "p.q"), StewardFormat)
    assert isinstance(event_format("choria", "n"), ChoriaFormat)
    with pytest.raises(ValueError, match="unknown event format"):
        event_format("cloudy", "n")


MANUAL = Cause.manual()


# the outbox ------------------------------------------------------------------------------------
@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = SqliteStore(tmp_path / "steward.db", OutboxLimits(max_events=5, max_bytes=1 << 20))
    await s.open()
    yield s
    await s.close()


async def test_a_transition_and_its_event_are_one_transaction(store: SqliteStore) -> None:
    builder = StewardFormat("n")
    await store.save(SavedMachine("web", "1.0.0", "a", 1.0, 0, {}))
    event = transition_event(builder, seq=1)
    await store.record_transition(
        TransitionRecord("web", "1.0.0", "up", "a", "b", 1, 2.0, MANUAL), [event]
    )
    # a second write with a stale seq fails: neither the state nor its event is kept
    stale = transition_event(builder, seq=1)
    with pytest.raises(Exception, match="stored seq"):
        await store.record_transition(
            TransitionRecord("web", "1.0.0", "up", "a", "b", 1, 3.0, MANUAL), [stale]
        )
    rows = await store.outbox_peek(10)
    assert [r.event_id for r in rows] == [event.id]
    assert (await store.outbox_stats()).events == 1


async def test_a_transition_whose_caller_is_cancelled_still_wakes_the_publisher(
    store: SqliteStore,
) -> None:
    # the store's thread commits the write whether or not its caller still waits for it
    await store.save(SavedMachine("web", "1.0.0", "a", 1.0, 0, {}))
    sink = OutboxSink(store)
    emitter = Emitter(StewardFormat("n"), sink, LocalEvents())
    event = transition_event(emitter.format, seq=1)
    record = TransitionRecord("web", "1.0.0", "up", "a", "b", 1, 2.0, MANUAL)
    commit = asyncio.ensure_future(emitter.commit_transition(store, record, event))
    await asyncio.sleep(0)  # the write is handed to the store's thread
    commit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await commit
    assert sink.changed.is_set()  # so the publisher looks
    deadline = asyncio.get_running_loop().time() + 5.0
    while not await store.outbox_peek(10):  # and finds it: the write happened anyway
        assert asyncio.get_running_loop().time() < deadline, "the event was never written"
        await asyncio.sleep(0.01)


async def test_outbox_drains_in_order(store: SqliteStore) -> None:
    builder = StewardFormat("n")
    events = [transition_event(builder, seq=i) for i in range(4)]
    await store.append_events(events)
    rows = await store.outbox_peek(2)
    assert [r.event_id for r in rows] == [e.id for e in events[:2]]
    await store.outbox_remove(rows[-1].rowid)
    rest = await store.outbox_peek(10)
    assert [r.event_id for r in rest] == [e.id for e in events[2:]]
    assert [json.loads(r.body)["id"] for r in rest] == [e.id for e in events[2:]]
    stats = await store.outbox_stats()
    assert (stats.events, stats.bytes) == (2, sum(len(e.body) for e in events[2:]))


async def test_full_outbox_drops_the_oldest_and_counts_across_restarts(
    store: SqliteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    builder = StewardFormat("n")
    events = [transition_event(builder, seq=i) for i in range(8)]
    for e in events:
        await store.append_events([e])
    assert [r.event_id for r in await store.outbox_peek(10)] == [e.id for e in events[3:]]
    assert (await store.outbox_stats()).dropped == 3
    warning = "event outbox full: dropped 1 events, lowest priority first (transition 1; 1 in all)"
    assert warning in caplog.text
    await store.close()
    reopened = SqliteStore(tmp_path / "steward.db", OutboxLimits(max_events=5))
    await reopened.open()
    try:
        stats = await reopened.outbox_stats()
        assert (stats.events, stats.dropped) == (5, 3)
        assert stats.dropped_by_kind == {"transition": 3}
    finally:
        await reopened.close()
    await store.open()


async def test_byte_bound_drops_too(tmp_path: Path) -> None:
    builder = StewardFormat("n")
    one = len(transition_event(builder).body)
    s = SqliteStore(tmp_path / "b.db", OutboxLimits(max_events=1000, max_bytes=one * 3 + 10))
    await s.open()
    try:
        for i in range(5):
            await s.append_events([transition_event(builder, seq=i)])
        stats = await s.outbox_stats()
        assert (stats.events, stats.dropped) == (3, 2)
        assert stats.bytes <= one * 3 + 10
    finally:
        await s.close()


# what a running machine emits ------------------------------------------------------------------
async def test_a_transition_emits_its_event_with_the_record(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    sub = h.events.local.subscribe(kind=EventKind.TRANSITION)
    await h.machine.fire("up")
    (stored,) = h.store.outbox
    assert (await sub.next()).id == stored.id
    data = parse_event(stored.body).get_data()
    assert isinstance(data, dict)
    assert (data["seq"], data["from_state"], data["to_state"]) == (1, "a", "b")
    assert data["instance"] == h.machine.instance


async def test_watcher_state_is_announced_when_the_outcome_changes(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("probe", interval=1)))
    await h.start()
    probe = h.watcher("probe")
    for outcome in (Outcome.SUCCESS, Outcome.SUCCESS, Outcome.FAILURE, Outcome.UNCHANGED):
        probe.feed(outcome)
        await h.clock.advance(1)
    outcomes = [
        parse_event(e.body).get_data()["outcome"]  # type: ignore[index]
        for e in h.store.outbox
        if e.kind is EventKind.WATCHER
    ]
    assert outcomes == ["success", "failure"]


async def test_announce_interval_repeats_an_unchanged_outcome(harnesses: Any) -> None:
    from dataclasses import replace

    probe_spec = replace(w("probe", interval=30), announce_interval=60.0)
    h = harnesses(machine_spec(probe_spec))
    await h.start()
    probe = h.watcher("probe")
    for _ in range(5):  # t = 0, 30, 60, 90, 120
        probe.feed(Outcome.SUCCESS)
        await h.clock.advance(30)
    watcher_events = [e for e in h.store.outbox if e.kind is EventKind.WATCHER]
    assert len(watcher_events) == 3  # at 0, 60 and 120


async def test_lifecycle_events_for_start_reload_and_removal() -> None:
    from steward.daemon.node import Node
    from tests.support.fakes import FakeStore, node_services

    store = FakeStore()
    node = Node(node_services(store=store, node="n"))
    spec = machine_spec()
    await node.add(spec)
    await node.get("m").fire("up")
    from dataclasses import replace

    await node.replace(replace(spec, version="1.1.0", checksum="y"))
    await node.remove("m")
    await settle()
    steps = [
        parse_event(e.body).get_data()["step"]  # type: ignore[index]
        for e in store.outbox
        if e.kind is EventKind.LIFECYCLE
    ]
    assert steps == ["loaded", "started", "reloaded", "resumed", "removed"]


async def test_without_nats_events_reach_local_consumers_only(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    h.events.sink = LocalOnly()  # what the daemon has when no NATS is configured
    await h.start()
    sub = h.events.local.subscribe()
    await h.machine.fire("up")
    assert h.store.outbox == []
    assert h.store.records[-1].seq == 1  # the state itself is still recorded
    assert (await sub.next()).kind is EventKind.TRANSITION


@pytest.mark.parametrize(
    ("machines", "expected"),
    [
        ("aaaa", ["a", "a", "a", "a"]),
        ("abcabc", ["abc", "abc"]),
        ("abba", ["ab", "ba"]),
        ("".join(chr(0x100 + i) for i in range(200)), None),  # more machines than WINDOW
    ],
)
def test_publish_windows_hold_one_event_per_machine(
    machines: str, expected: list[str] | None
) -> None:
    rows = [OutboxRow(i + 1, f"e{i}", "s", b"", m) for i, m in enumerate(machines)]
    windows = ["".join(r.machine for r in w) for w in publisher_windows(rows)]
    assert len(windows) == (2 if expected is None else len(expected))
    assert [r for win in publisher_windows(rows) for r in win] == rows  # every row, in order
    for win in publisher_windows(rows):
        assert len({r.machine for r in win}) == len(win) <= WINDOW
    if expected is not None:
        assert windows == expected
