"""The running machine and the watcher base, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from steward.errors import StoreError, TransitionRejected
from steward.machine.history import Cause
from steward.machine.persistence import SavedMachine
from steward.machine.runtime import STORE_RETRY_EVERY, RunningMachine
from steward.machine.spec import ForeignState, MachineSpec
from steward.watchers.base import Outcome
from steward.watchers.registry import WatcherRegistry
from steward.watchers.timer import TimerProperties
from tests.support.daemon import until
from tests.support.fakes import (
    FakeClock,
    FakeNode,
    FakeStore,
    ScriptedWatcher,
    node_services,
    settle,
)
from tests.support.machines import POS, TRANSITIONS, Harness, machine_spec, t, w


async def test_active_watchers_run_at_once_after_splay(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("probe", states=("a",), success="up"), splay=10))
    await h.start()
    probe = h.watcher("probe")
    assert probe.started == 0  # still in splay
    await h.clock.advance(10)
    assert probe.started == 1
    probe.feed(Outcome.SUCCESS)
    await settle()
    assert h.machine.state == "b"
    assert h.machine.seq == 1


async def test_interval_reruns_the_check(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("probe", interval=5)))
    await h.start()
    probe = h.watcher("probe")
    probe.feed(Outcome.UNCHANGED)
    await settle()
    assert probe.started == 1
    await h.clock.advance(4.9)
    assert probe.started == 1
    await h.clock.advance(0.1)
    assert probe.started == 2


async def test_watcher_without_interval_runs_once_per_activation(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("probe", states=("a",))))
    await h.start()
    probe = h.watcher("probe")
    probe.feed(Outcome.UNCHANGED)
    await h.clock.advance(3600)
    assert probe.started == 1
    await h.machine.fire("up")
    await h.machine.fire("down")
    await settle()
    assert probe.started == 2  # entering `a` again activated it again


async def test_entering_a_state_runs_newly_active_watchers(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("in_b", states=("b",), fail="down")))
    await h.start()
    in_b = h.watcher("in_b")
    assert in_b.started == 0 and not in_b.active
    await h.machine.fire("up")
    await settle()
    assert in_b.started == 1 and in_b.active
    in_b.feed(Outcome.FAILURE)
    await settle()
    assert h.machine.state == "a"
    assert not in_b.active


async def test_leaving_the_state_cancels_a_running_check(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("slow", states=("a",), success="park")))
    await h.start()
    slow = h.watcher("slow")
    assert slow.started == 1
    await h.machine.fire("up")
    await settle()
    assert slow.cancelled == 1
    assert not slow.active


async def test_result_from_a_check_that_outlived_its_state_is_dropped(harnesses: Any) -> None:
    # active in a and b, so the move a -> b does not cancel it
    h = harnesses(machine_spec(w("probe", states=("a", "b"), success="park")))
    await h.start()
    probe = h.watcher("probe")
    await h.machine.fire("up")
    probe.feed(Outcome.SUCCESS)  # the check began in `a`
    await settle()
    assert h.machine.state == "b"  # park was dropped, the machine moved on meanwhile
    assert probe.last_result is not None and probe.last_result.outcome is Outcome.SUCCESS


async def test_invalid_transition_from_a_watcher_is_counted_not_fatal(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("probe", states=("a",), fail="down")))
    await h.start()
    h.watcher("probe").feed(Outcome.FAILURE)
    await settle()
    assert h.machine.state == "a"
    assert h.machine.transitions_rejected == 1


async def test_manual_transition_rejected_names_the_state(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    with pytest.raises(TransitionRejected, match=r"rejected in state 'a': valid only from b"):
        await h.machine.fire("down")
    with pytest.raises(TransitionRejected, match=r"no transition named 'nope'"):
        await h.machine.fire("nope")


async def test_self_transition_changes_and_publishes_nothing(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    result = await h.machine.fire("stay")
    assert not result.changed
    assert h.machine.seq == 0
    assert h.node.transitions == []
    assert h.store.records == []


async def test_transition_is_recorded_before_state_moves(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    r1 = await h.machine.fire("up")
    r2 = await h.machine.fire("down")
    assert (r1.seq, r2.seq) == (1, 2)
    assert [(r.transition, r.from_state, r.to_state, r.seq) for r in h.store.records] == [
        ("up", "a", "b", 1),
        ("down", "b", "a", 2),
    ]
    assert h.store.rows["m"].state == "a"
    assert [x.transition for x in h.node.transitions] == ["up", "down"]


async def test_store_failure_keeps_the_machine_running(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    h.store.fail_with = StoreError("disk full")
    result = await h.machine.fire("up")
    assert result.to_state == "b"
    assert h.machine.store_error == "disk full"
    h.store.fail_with = None
    await h.machine.fire("down")  # waits behind "up" until the next attempt
    assert h.machine.store_error == "disk full"
    await h.clock.advance(STORE_RETRY_EVERY)
    assert h.machine.store_error is None
    assert [r.seq for r in h.store.records] == [1, 2]


async def test_resume_restores_state_data_and_seq(harnesses: Any) -> None:
    store = FakeStore()
    store.rows["m"] = SavedMachine("m", "1.0.0", "b", 123.0, 7, {"k": 1})
    h = harnesses(machine_spec(), store)
    await h.start()
    assert (h.machine.state, h.machine.seq, h.machine.data) == ("b", 7, {"k": 1})
    assert h.machine.resumed
    result = await h.machine.fire("down")
    assert result.seq == 8


async def test_without_resume_state_resets_but_seq_continues(harnesses: Any) -> None:
    store = FakeStore()
    store.rows["m"] = SavedMachine("m", "1.0.0", "b", 123.0, 7, {"k": 1})
    h = harnesses(machine_spec(resume=False), store)
    await h.start()
    assert (h.machine.state, h.machine.seq, h.machine.data) == ("a", 7, {})
    assert (await h.machine.fire("up")).seq == 8


async def test_saved_state_that_no_longer_exists_starts_initial(harnesses: Any) -> None:
    store = FakeStore()
    store.rows["m"] = SavedMachine("m", "0.9.0", "gone", 123.0, 3, {})
    h = harnesses(machine_spec(), store)
    await h.start()
    assert (h.machine.state, h.machine.seq, h.machine.resumed) == ("a", 3, False)


async def test_watcher_data_is_merged_and_saved(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("probe")))
    await h.start()
    h.watcher("probe").feed(Outcome.SUCCESS, data={"attempts": 2})
    await settle()
    assert h.machine.data == {"attempts": 2}
    assert h.store.rows["m"].data == {"attempts": 2}


async def test_foreign_state_required_gates_the_watcher(harnesses: Any) -> None:
    need = (ForeignState("other", "ready", POS),)
    h = harnesses(machine_spec(w("gated", foreign=need)))
    await h.start()
    gated = h.watcher("gated")
    assert not gated.active and gated.started == 0
    h.node.states["other"] = "ready"
    h.machine.foreign_changed()
    await settle()
    assert gated.active and gated.started == 1
    h.node.states["other"] = "busy"
    h.machine.foreign_changed()
    await settle()
    assert not gated.active and gated.cancelled == 1


async def test_timer_fires_fail_transition_when_it_expires(harnesses: Any) -> None:
    timer = w("t", wtype="timer", states=("b",), fail="down", props=TimerProperties(30))
    h = harnesses(machine_spec(timer))
    await h.start()
    await h.machine.fire("up")
    await h.clock.advance(29)
    assert h.machine.state == "b"
    await h.clock.advance(1)
    assert h.machine.state == "a"


async def test_timer_is_cancelled_when_the_state_stops_matching(harnesses: Any) -> None:
    timer = w("t", wtype="timer", states=("b",), fail="down", props=TimerProperties(30))
    h = harnesses(machine_spec(timer))
    await h.start()
    await h.machine.fire("up")
    await h.clock.advance(10)
    await h.machine.fire("park")  # b -> c: timer no longer matches
    await h.clock.advance(60)
    assert h.machine.state == "c"
    assert h.clock.sleepers == 0


async def test_timer_restarts_on_entering_another_matching_state(harnesses: Any) -> None:
    timer = w("t", wtype="timer", states=("b", "c"), fail="down", props=TimerProperties(30))
    spec = machine_spec(timer)
    spec = MachineSpec(**{**spec.__dict__, "transitions": (*TRANSITIONS, t("back", ["c"], "b"))})
    h = harnesses(spec)
    await h.start()
    await h.machine.fire("up")
    await h.clock.advance(20)
    await h.machine.fire("park")  # into c: restart the 30 s
    await h.clock.advance(20)
    assert h.machine.state == "c"
    await h.machine.fire("back")  # into b: restart again
    await h.clock.advance(29)
    assert h.machine.state == "b"
    await h.clock.advance(1)
    assert h.machine.state == "a"


async def test_stop_cancels_every_watcher(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("one"), w("two")))
    await h.start()
    await h.machine.stop()
    assert [x.cancelled for x in h.machine.watchers] == [1, 1]
    assert not any(x.active for x in h.machine.watchers)


async def test_a_transition_waiting_when_the_machine_stops_is_rejected(harnesses: Any) -> None:
    import asyncio

    h = harnesses(machine_spec())
    await h.start()
    gate = asyncio.Event()
    original = h.store.record_transition

    async def slow(record: Any, events: Any = ()) -> None:
        await gate.wait()
        await original(record, events)

    h.store.record_transition = slow
    in_flight = asyncio.ensure_future(h.machine.fire("up"))
    queued = asyncio.ensure_future(h.machine.fire("park"))
    await settle()
    await h.machine.stop()
    for waiter in (in_flight, queued):
        with pytest.raises(TransitionRejected, match="the machine stopped"):
            await waiter
    with pytest.raises(TransitionRejected, match="the machine stopped"):
        await h.machine.fire("up")


async def test_a_check_that_swallows_cancellation_still_stops_its_loop() -> None:
    """Python 3.11's wait_for can swallow a cancel; the loop must end anyway."""
    import asyncio

    from steward.watchers.base import WatcherResult

    class Swallowing(ScriptedWatcher):
        async def check(self) -> WatcherResult:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass  # what the library bug does
            return WatcherResult(Outcome.UNCHANGED)

    h = Harness(machine_spec())
    watcher = Swallowing(w("s", interval=1), h.machine, h.services.watcher_context("m", "i"))
    watcher.activate()
    await settle()
    await asyncio.wait_for(watcher.close(), 5)
    assert not watcher.active


async def test_gather_initial_state_never_runs_a_command_in_an_excluded_state(
    tmp_path: Path,
) -> None:
    from steward.templates import Template
    from steward.watchers.exec import ExecProperties, ExecWatcher

    marker = tmp_path / "ran"
    props = ExecProperties(
        command=Template.parse("touch ran"), argv=("touch", str(marker)), gather_initial_state=True
    )
    spec = replace(
        machine_spec(w("cleanup", states=("c",), wtype="exec", props=props)),
        directory=tmp_path,
    )
    clock = FakeClock()
    services = node_services(clock=clock, registry=WatcherRegistry([ExecWatcher]))
    machine = RunningMachine(spec, node=FakeNode(), services=services)
    await machine.start()
    try:
        await clock.advance(120)
        await asyncio.sleep(0.3)  # a command started now would have run by then
        watcher = machine.watchers[0]
        assert machine.state == "a"
        assert (watcher.runs, watcher.active, marker.exists()) == (0, False, False)
        await machine.fire("park")  # a -> c: the watcher's state; now it runs, at once
        async with asyncio.timeout(10):
            while not marker.exists():
                await asyncio.sleep(0.02)
    finally:
        await machine.stop()


async def test_active_watchers_hear_of_data_another_watcher_wrote() -> None:
    heard: list[frozenset[str]] = []

    class Listening(ScriptedWatcher):
        TYPE = "listening"

        def data_changed(self, keys: frozenset[str]) -> None:
            heard.append(keys)

    clock = FakeClock()
    services = node_services(clock=clock, registry=WatcherRegistry([ScriptedWatcher, Listening]))
    spec = machine_spec(w("writer"), w("reader", wtype="listening"), w("idle", states=("b",)))
    machine = RunningMachine(spec, node=FakeNode(), services=services)
    await machine.start()
    try:
        await settle()
        writer = next(x for x in machine.watchers if x.name == "writer")
        writer.feed(Outcome.UNCHANGED, data={"spec": "v2"})
        await settle()
        assert heard == [frozenset({"spec"})]
        assert machine.data == {"spec": "v2"}
    finally:
        await machine.stop()


async def test_wake_runs_a_watcher_without_interval_once_more(harnesses: Any) -> None:
    h = harnesses(machine_spec(w("probe")))  # no interval: it runs when it becomes active
    await h.start()
    probe = h.watcher("probe")
    probe.feed(Outcome.UNCHANGED)
    await settle()
    assert probe.started == 1
    probe.wake()
    await settle()
    assert probe.started == 2
    probe.deactivate()
    probe.wake()  # inactive: nothing
    await settle()
    assert probe.started == 2


# history: each transition with its cause -------------------------------------------------------
async def test_a_manual_transition_is_remembered_with_its_cause(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    assert h.machine.status()["last_transition"] is None
    await h.machine.fire("up")
    with pytest.raises(TransitionRejected):
        await h.machine.fire("stay")  # valid only from a: nothing recorded
    (record,) = h.store.records
    assert record.cause == Cause.manual()
    assert list(h.machine.recent_history) == [record.entry()]
    last = h.machine.status()["last_transition"]
    assert (last["seq"], last["transition"], last["cause"]) == (
        1,
        "up",
        {"kind": "manual", "text": "manual"},
    )


async def test_a_self_transition_is_not_remembered(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    await h.machine.fire("stay")
    assert list(h.machine.recent_history) == []
    assert h.store.records == []


async def test_an_exec_transition_keeps_the_exit_code_and_output(tmp_path: Path) -> None:
    from steward.templates import Template
    from steward.watchers.exec import ExecProperties, ExecWatcher

    command = "sh -c 'echo nope; exit 3'"
    props = ExecProperties(command=Template.parse(command), argv=("sh", "-c", "echo nope; exit 3"))
    spec = replace(
        machine_spec(w("check", states=("a",), fail="park", wtype="exec", props=props)),
        directory=tmp_path,
    )
    store = FakeStore()
    services = node_services(store=store, registry=WatcherRegistry([ExecWatcher]))
    machine = RunningMachine(spec, node=FakeNode(), services=services)
    await machine.start()
    try:
        await until("the exec watcher to park the machine", lambda: machine.state == "c")
    finally:
        await machine.stop()
    (record,) = store.records
    cause = record.cause
    assert (cause.kind, cause.text, cause.watcher, cause.watcher_type, cause.outcome) == (
        "watcher",
        "watcher check",
        "check",
        "exec",
        "failure",
    )
    assert cause.detail == "exit code 3: nope"
    assert (cause.result["exit_code"], cause.result["stdout"]) == (3, "nope\n")
    assert machine.recent_history[-1].cause == cause


async def test_a_restart_remembers_the_last_transitions(harnesses: Any) -> None:
    h = harnesses(machine_spec())
    await h.start()
    for _ in range(6):
        await h.machine.fire("up")
        await h.machine.fire("down")
    await h.machine.stop()
    again = harnesses(machine_spec(), h.store)
    await again.start()
    assert [e.seq for e in again.machine.recent_history] == list(range(3, 13))  # the last 10
    assert again.machine.status()["last_transition"]["seq"] == 12


async def test_a_machine_keeps_its_last_transitions_and_no_queue_once_its_work_is_done(
    harnesses: Any,
) -> None:
    """What 10,000 machines each keep after a transition (bench/timers_10k.py): the last
    ``RECENT_HISTORY`` entries, and no queue or worker once nothing waits."""
    h = harnesses(machine_spec())
    await h.start()
    for _ in range(6):
        await h.machine.fire("up")
        await h.machine.fire("down")
    assert [e.seq for e in h.machine.recent_history] == list(range(3, 13))
    assert h.machine.status()["last_transition"]["seq"] == 12
    await until("the worker ended", lambda: h.machine._worker is None)
    assert h.machine._inbox is None
    await h.machine.fire("up")  # a new queue and worker when something comes again
    assert h.machine.recent_history[-1].seq == 13
    await h.machine.stop()
