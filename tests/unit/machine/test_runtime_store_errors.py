"""A machine whose store fails runs on in memory, keeps what it could not write (bounded) and
writes it, in order, once the store works again: nothing is lost unless the wait overflows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from steward.errors import StoreError
from steward.events.envelope import EventKind, LifecycleStep
from steward.events.formats import parse_event
from steward.events.outbox import OutboxLimits
from steward.machine import runtime
from steward.machine.history import Cause
from steward.machine.persistence import LateWrite, SavedMachine, SqliteStore, TransitionRecord
from steward.machine.runtime import STORE_RETRY_EVERY
from steward.watchers.base import Outcome, WatcherResult
from tests.support.fakes import settle
from tests.support.machines import machine_spec, w

FULL = StoreError("database or disk is full")


def seqs_in_outbox(h: Any) -> list[int]:
    out = []
    for e in h.store.outbox:
        if e.kind is EventKind.TRANSITION:
            data = parse_event(e.body).get_data()
            out.append(data["seq"])
    return out


def resumed_reports(h: Any) -> list[dict[str, Any]]:
    reports = []
    for e in h.store.outbox:
        data = parse_event(e.body).get_data()
        if e.kind is EventKind.LIFECYCLE and data["step"] == LifecycleStep.RECORDING_RESUMED:
            reports.append(data)
    return reports


async def test_what_could_not_be_written_is_written_in_order_when_the_store_returns(
    harnesses: Any,
) -> None:
    h = harnesses(machine_spec(w("probe")))
    await h.start()
    await h.machine.fire("up")  # seq 1, recorded
    h.store.fail_with = FULL
    for name in ("down", "up", "down"):  # seqs 2-4: in memory only
        await h.machine.fire(name)
    h.machine.submit_result(h.watcher("probe"), WatcherResult(Outcome.FAILURE, "bad"), -1)
    await settle()
    assert (h.machine.state, h.machine.seq) == ("a", 4)
    assert h.machine.status()["unrecorded_waiting"] == 3
    assert [r.seq for r in h.store.records] == [1]

    h.store.fail_with = None
    await h.machine.fire("up")  # seq 5 works now, but waits behind 2-4
    assert [r.seq for r in h.store.records] == [1]
    await h.clock.advance(STORE_RETRY_EVERY)  # the retry writes them all, oldest first
    assert [r.seq for r in h.store.records] == [1, 2, 3, 4, 5]
    assert seqs_in_outbox(h) == [1, 2, 3, 4, 5]
    kinds = [e.kind for e in h.store.outbox]
    # the watcher's announcement stays between seq 4 and 5, where it happened
    transition_positions = [i for i, k in enumerate(kinds) if k is EventKind.TRANSITION]
    assert transition_positions[3] < kinds.index(EventKind.WATCHER) < transition_positions[4]
    assert h.store.rows["m"].seq == 5 and h.store.rows["m"].state == "b"
    (report,) = resumed_reports(h)
    assert report["recorded_late"] == 4
    assert report["recorded_late_seq"] == [2, 5]
    assert report["unrecorded_transitions"] == 0
    status = h.machine.status()
    assert (status["store_error"], status["unrecorded_waiting"], status["lost_transitions"]) == (
        None,
        0,
        0,
    )
    assert status["unrecorded_transitions"] == 4  # since start: not written when they happened


async def test_the_wait_is_bounded_announcements_go_first_then_the_oldest_transitions(
    harnesses: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "UNRECORDED_MAX", 3)
    h = harnesses(machine_spec(w("probe")))
    await h.start()
    h.store.fail_with = FULL
    await h.machine.fire("up")  # 1
    h.machine.submit_result(h.watcher("probe"), WatcherResult(Outcome.FAILURE, "bad"), -1)
    await settle()
    for name in ("down", "up", "down"):  # 2-4: the announcement goes, then seq 1
        await h.machine.fire(name)
    assert h.machine.lost_transitions == 1
    h.store.fail_with = None
    await h.clock.advance(STORE_RETRY_EVERY)
    assert [r.seq for r in h.store.records] == [2, 3, 4]
    assert not [e for e in h.store.outbox if e.kind is EventKind.WATCHER]
    (report,) = resumed_reports(h)
    assert report["unrecorded_transitions"] == 1
    assert report["unrecorded_seq"] == [1, 1]
    assert report["recorded_late_seq"] == [2, 4]


async def test_a_stop_while_the_store_fails_says_what_is_lost(
    harnesses: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = harnesses(machine_spec())
    await h.start()
    h.store.fail_with = FULL
    await h.machine.fire("up")
    await h.machine.fire("down")
    await h.machine.stop()
    assert "stopping with 2 transitions not recorded" in caplog.text


async def test_a_stop_writes_what_waits_when_the_store_works_again(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    h.store.fail_with = FULL
    await h.machine.fire("up")
    h.store.fail_with = None
    await h.machine.stop()
    assert [r.seq for r in h.store.records] == [1]


# the store's side ----------------------------------------------------------------------------
MANUAL = Cause.manual()


def record(seq: int) -> TransitionRecord:
    to, frm = ("b", "a") if seq % 2 else ("a", "b")
    return TransitionRecord("m", "1.0.0", "flip", frm, to, seq, 10.0 + seq, MANUAL)


async def test_late_writes_are_one_transaction_in_order_with_history(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "steward.db", OutboxLimits())
    await s.open()
    try:
        await s.save(SavedMachine("m", "1.0.0", "a", 1.0, 0, {}))
        await s.record_transition(record(1))
        # seq 1 is stored already (a write its caller thought failed): skipped, not an error
        await s.record_late([LateWrite(record(n)) for n in (1, 2, 3)])
        assert [e.seq for e in await s.history("m", 10)] == [1, 2, 3]
        assert (await s.load("m")).seq == 3  # type: ignore[union-attr]
        # all or nothing: a bad write in the middle leaves none of them
        bad = TransitionRecord("gone", "1.0.0", "x", "a", "b", 1, 1.0, MANUAL)
        with pytest.raises(StoreError):
            await s.record_late([LateWrite(record(4)), LateWrite(bad), LateWrite(record(5))])
        assert [e.seq for e in await s.history("m", 10)] == [1, 2, 3]
    finally:
        await s.close()
