"""Events through the real nats-server: CloudEvents as documented, and delivery that loses
nothing across outages, crashes and a broker that was never there.

Each test runs the real daemon (``python -m steward run``, driven through the CLI) and a real
``nats-server -js`` on a free port that the test stops and starts again on the same port and
JetStream store. What arrived is read back from the stream (an ordered consumer) or by a
plain subscriber, and every message is parsed with the ``cloudevents`` SDK.

The outage lasts ``OUTAGE`` seconds: 10 by default, 30 (the issue's figure) with
``STEWARD_LONG_TESTS=1``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import MachinesDir
from tests.support.events import (
    DEADLINE,
    LIFECYCLE_STEPS,
    PREFIX,
    STREAM,
    NatsCollector,
    StewardDaemon,
    add_stream,
    check_event,
    data_of,
    delete_stream,
    describe_gaps,
    make_daemon,
    parse,
    read_stream,
    seqs_of,
    short_tmp_dir,
    toggle,
    transitions,
)
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

OUTAGE = 30.0 if os.environ.get("STEWARD_LONG_TESTS") == "1" else 10.0
NODE = "e2e"  # the harness's --node

MakeDaemon = Callable[..., StewardDaemon]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
def nats_down(tmp_path: Path) -> Iterator[NatsServer]:
    """A server with a port and a store, not started: the test brings it up."""
    yield from running_nats(tmp_path, start=False)


@pytest.fixture
def machines(tmp_path: Path) -> MachinesDir:
    return MachinesDir(tmp_path / "machines")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = short_tmp_dir("sn-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemons(tmp_path: Path, machines: MachinesDir, state_dir: Path) -> Iterator[MakeDaemon]:
    """Make the daemon with the test's config and flags; killed at teardown whatever happened."""
    made: list[StewardDaemon] = []

    def make(*, config: str = "", args: tuple[str, ...] = ()) -> StewardDaemon:
        d = make_daemon(tmp_path, machines.path, state_dir, config=config, args=args)
        made.append(d)
        return d

    yield make
    for d in made:
        d.cleanup()


def jetstream(server: NatsServer) -> tuple[str, ...]:
    return ("--nats-server", server.url, "--nats-stream", STREAM)


def hold(daemon: StewardDaemon, until: float, check: Callable[[dict[str, Any]], None]) -> None:
    """Keep an outage going until the monotonic time ``until``, polling the daemon's status
    all along: it must keep answering, and ``check`` says what else must hold."""
    while time.monotonic() < until:
        check(daemon.wait_for(lambda s: True, what="status during the outage"))


def halt(daemon: StewardDaemon, machine: str) -> int:
    """Stop the machine toggling; its final seq."""
    return int(daemon.transition(machine, "halt")["seq"])


# --------------------------------------------------------------------------------------------
PROBE = """\
name: probe
version: {version}
initial_state: unknown
transitions:
  - {{name: healthy, from: [unknown, sick], destination: ok}}
  - {{name: unhealthy, from: [unknown, ok], destination: sick}}
watchers:
  - name: check
    type: exec
    interval: 200ms
    success_transition: healthy
    fail_transition: unhealthy
    properties:
      command: ./check.sh
"""
SPARE = """\
name: spare
version: 0.1.0
initial_state: idle
transitions:
  - {name: go, from: [idle], destination: busy}
"""
BROKEN = """\
name: broken
version: 1.0.0
initial_state: nowhere
transitions:
  - {name: go, from: [elsewhere], destination: nowhere, bogus: 1}
"""


def test_every_event_parses_and_carries_the_documented_fields(
    tmp_path: Path, nats_server: NatsServer, machines: MachinesDir, daemons: MakeDaemon
) -> None:
    node = "edge.01"  # a dot is not a NATS token character: the subject says edge_01
    probe_dir = machines.add("probe", PROBE.format(version="2.1.0"), {"check.sh": "test -e up\n"})
    machines.add("spare", SPARE)
    d = daemons(args=(*jetstream(nats_server), "--node", node))
    d.start()
    d.wait_state("probe", "sick", DEADLINE)  # exec failure -> unhealthy
    (probe_dir / "up").write_text("")
    d.wait_state("probe", "ok", DEADLINE)  # exec success -> healthy

    # resumed: a restart on the same state dir
    assert d.stop() == 0
    d.start()
    assert d.wait_machine("probe", lambda m: m["resumed"], DEADLINE, "resumed")["state"] == "ok"
    # reloaded, removed, load_failed: a changed file, a removed dir, an invalid file
    (probe_dir / "machine.yaml").write_text(PROBE.format(version="2.1.1"))
    shutil.rmtree(machines.path / "spare")
    machines.add("broken", BROKEN)
    d.signal(signal.SIGHUP)
    d.wait_for(
        lambda s: (
            [m["name"] for m in s["machines"]] == ["probe"]
            and s["machines"][0]["version"] == "2.1.1"
            and s["problems"]
        ),
        DEADLINE,
        "probe reloaded, spare removed, broken rejected",
    )
    d.wait_for(d.delivered_all, DEADLINE, "the outbox delivered")

    messages = read_stream(nats_server.url)
    events = [check_event(m, node) for m in messages]
    ids = Counter(e.get_id() for e in events)
    assert not [i for i, n in ids.items() if n > 1], "an event id was stored twice"

    steps = {(e.get_subject(), data_of(e)["step"]) for e in events if "lifecycle" in e.get_type()}
    assert {step for _, step in steps} == LIFECYCLE_STEPS
    assert {
        ("probe", "loaded"),
        ("probe", "started"),
        ("probe", "resumed"),
        ("probe", "reloaded"),
        ("spare", "removed"),
        ("broken", "load_failed"),
    } <= steps

    watcher = [data_of(e) for e in events if e.get_type().endswith(".state")]
    assert {e.get_type() for e in events if e.get_type().endswith(".state")} == {
        "io.steward.machine.watcher.exec.v1.state"
    }
    outcomes = [w["outcome"] for w in watcher]
    assert "failure" in outcomes and "success" in outcomes
    for w in watcher:
        assert w["watcher"] == "check"
        assert {"command", "previous_outcome", "previous_run_time", "exit_code"} <= set(w["state"])
        assert w["state"]["command"] == "./check.sh"

    moves = transitions(events, "probe")
    assert [t["seq"] for t in moves] == list(range(1, len(moves) + 1)), moves
    assert [t["transition"] for t in moves[:2]] == ["unhealthy", "healthy"]
    for before, after in itertools.pairwise(moves):
        assert before["to_state"] == after["from_state"]
    assert {t["machine_version"] for t in moves} <= {"2.1.0", "2.1.1"}
    assert moves[-1]["seq"] == d.machine_seq("probe")
    assert d.stop() == 0


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kill_daemon", [False, True], ids=["daemon-runs-on", "daemon-kill-9"])
def test_outage_loses_nothing_and_repeats_nothing(
    nats_server: NatsServer, machines: MachinesDir, daemons: MakeDaemon, kill_daemon: bool
) -> None:
    machines.add("blink", toggle("blink"))
    d = daemons(args=jetstream(nats_server))
    d.start()
    d.wait_for(
        lambda s: s["events"]["nats"]["published"] >= 20, DEADLINE, "events published to NATS"
    )

    nats_server.stop()
    began = time.monotonic()
    before = d.wait_for(
        lambda s: not s["events"]["nats"]["connected"] and s["events"]["outbox"]["events"] >= 5,
        DEADLINE,
        "the daemon to notice the outage and keep events in the outbox",
    )
    spooled = before["events"]["outbox"]["events"]

    def still_running(status: dict[str, Any]) -> None:
        assert d.machine("blink", status) is not None
        assert status["events"]["nats"]["connected"] is False

    if kill_daemon:
        hold(d, began + OUTAGE / 2, still_running)
        d.kill9()
        d.start()
        d.wait_machine("blink", lambda m: m["resumed"], DEADLINE, "resumed after kill -9")
    hold(d, began + OUTAGE, still_running)
    during = d.status()["events"]["outbox"]["events"]
    assert during > spooled, "the machine kept transitioning into the outbox"

    nats_server.start()
    d.wait_for(
        lambda s: s["events"]["nats"]["connected"] and s["events"]["outbox"]["events"] < during,
        DEADLINE,
        "the daemon to reconnect and drain the outbox",
    )
    last = halt(d, "blink")
    d.wait_for(d.delivered_all, DEADLINE, "every event delivered")

    messages = read_stream(nats_server.url, subject=f"{PREFIX}.{NODE}.blink.transition")
    seqs = seqs_of(messages, "blink", NODE)
    assert seqs == list(range(1, last + 1)), describe_gaps(seqs)
    assert last >= OUTAGE * 5, f"only {last} transitions: the machine was not toggling"


def test_never_connected_daemon_runs_and_delivers_the_backlog(
    nats_down: NatsServer, machines: MachinesDir, daemons: MakeDaemon
) -> None:
    machines.add("blink", toggle("blink"))
    d = daemons(args=jetstream(nats_down))
    d.start()  # NATS is not there: the daemon must not wait for it
    status = d.wait_for(
        lambda s: s["machines"][0]["seq"] >= 40, DEADLINE, "transitions without NATS"
    )
    assert status["events"]["nats"]["connected"] is False
    assert status["events"]["outbox"]["events"] >= 40

    nats_down.start()
    d.wait_for(lambda s: s["events"]["nats"]["published"] >= 40, DEADLINE, "the backlog delivered")
    last = halt(d, "blink")
    d.wait_for(d.delivered_all, DEADLINE, "every event delivered")

    messages = read_stream(nats_down.url)
    events = [check_event(m, NODE) for m in messages]
    seqs = [t["seq"] for t in transitions(events, "blink")]
    assert seqs == list(range(1, last + 1)), describe_gaps(seqs)
    steps = [data_of(e)["step"] for e in events if "lifecycle" in e.get_type()]
    assert steps[:2] == ["loaded", "started"]  # from before NATS was ever seen


def test_a_full_outbox_drops_the_oldest_reports_it_and_delivers_the_newest(
    nats_down: NatsServer, machines: MachinesDir, daemons: MakeDaemon
) -> None:
    bound = 20
    machines.add("blink", toggle("blink"))
    d = daemons(config=f"events:\n  outbox:\n    max_events: {bound}\n", args=jetstream(nats_down))
    d.start()
    status = d.wait_for(
        lambda s: s["events"]["outbox"]["dropped"] > 0 and s["machines"][0]["seq"] >= 3 * bound,
        DEADLINE,
        "the outbox to overflow",
    )
    assert status["events"]["outbox"]["events"] <= bound
    last = halt(d, "blink")
    status = d.status()
    assert status["events"]["outbox"]["events"] <= bound
    assert status["events"]["outbox"]["dropped"] >= last - bound
    warnings = d.log_records("warning", "outbox full")
    assert warnings, f"no warning about the full outbox\n{d.log_tail()}"
    assert sum(warnings[0]["dropped"].values()) > 0 and warnings[0]["max_events"] == bound

    nats_down.start()
    d.wait_for(d.delivered_all, DEADLINE, "the newest events delivered")
    messages = read_stream(nats_down.url)
    assert len(messages) <= bound
    seqs = seqs_of(messages, "blink", NODE)
    # the newest survive, contiguous up to the last; the oldest are gone
    assert seqs and seqs[-1] == last, describe_gaps(seqs)
    assert seqs == list(range(last - len(seqs) + 1, last + 1)), describe_gaps(seqs)
    assert len(seqs) >= bound // 2 and seqs[0] > 1


def test_plain_status_reports_dropped_events(
    nats_down: NatsServer, machines: MachinesDir, daemons: MakeDaemon
) -> None:
    machines.add("blink", toggle("blink", "10ms"))
    d = daemons(config="events:\n  outbox:\n    max_events: 5\n", args=jetstream(nats_down))
    d.start()
    d.wait_for(lambda s: s["events"]["outbox"]["dropped"] > 0, DEADLINE, "events dropped")
    text = d.ctl("status").stdout
    assert "dropped" in text, text


def test_a_stream_that_cannot_be_created_is_reported_then_retried(
    nats_server: NatsServer, machines: MachinesDir, daemons: MakeDaemon
) -> None:
    add_stream(nats_server.url, "OTHER", ["steward.>"])  # holds our subjects already
    machines.add("spare", SPARE)
    d = daemons(args=jetstream(nats_server))
    d.start()
    status = d.wait_for(
        lambda s: "overlap" in (s["events"]["nats"]["last_error"] or ""),
        DEADLINE,
        "the refused stream creation in status",
    )
    assert status["events"]["nats"]["published"] == 0
    assert status["events"]["outbox"]["events"] >= 2  # loaded, started
    assert d.log_records("warning", "subjects overlap"), d.log_tail()

    delete_stream(nats_server.url, "OTHER")
    d.wait_for(d.delivered_all, DEADLINE, "the stream created and the outbox delivered")
    events = [check_event(m, NODE) for m in read_stream(nats_server.url)]
    assert [data_of(e)["step"] for e in events] == ["loaded", "started"]


# --------------------------------------------------------------------------------------------
def test_core_nats_subscriber_receives_every_event(
    nats_server: NatsServer, machines: MachinesDir, daemons: MakeDaemon
) -> None:
    collector = NatsCollector(nats_server.url, f"{PREFIX}.>").start()
    try:
        machines.add("blink", toggle("blink"))
        d = daemons(args=("--nats-server", nats_server.url))  # no stream: core NATS
        d.start()
        collector.wait_for(
            lambda got: len(seqs_of(got, "blink", NODE)) >= 20, "20 transitions on core NATS"
        )
        last = halt(d, "blink")
        status = d.wait_for(d.delivered_all, DEADLINE, "every event flushed")
        assert status["events"]["nats"]["stream"] is None
        got = collector.wait_for(
            lambda got: last in seqs_of(got, "blink", NODE), "the halt transition"
        )
    finally:
        collector.close()
    seqs = seqs_of(got, "blink", NODE)
    assert seqs == list(range(1, last + 1)), describe_gaps(seqs)
    kinds = {parse(m.body).get_type() for m in got}
    assert {
        "io.steward.machine.v1.lifecycle",
        "io.steward.machine.v1.transition",
        "io.steward.machine.watcher.timer.v1.state",
    } <= kinds


def test_choria_format_uses_choria_types_and_subjects(
    nats_server: NatsServer, machines: MachinesDir, daemons: MakeDaemon
) -> None:
    collector = NatsCollector(nats_server.url, "choria.machine.>").start()
    try:
        machines.add("blink", toggle("blink"))
        d = daemons(config="events:\n  format: choria\n", args=("--nats-server", nats_server.url))
        d.start()
        got = collector.wait_for(
            lambda got: (
                sum(m.subject == "choria.machine.transition" for m in got) >= 3
                and any(m.subject == "choria.machine.watcher.timer.state" for m in got)
            ),
            "Choria transition and watcher events",
        )
    finally:
        collector.close()
    moves = [m for m in got if m.subject == "choria.machine.transition"]
    for m in moves:
        event = parse(m.body)
        data = event.get_data()
        assert event.get_type() == "io.choria.machine.v1.transition"
        assert isinstance(data, dict)
        assert data["machine"] == "blink" and data["identity"] == NODE
        assert data["from_state"] != data["to_state"]
    watcher = parse(next(m for m in got if m.subject == "choria.machine.watcher.timer.state").body)
    assert watcher.get_type() == "io.choria.machine.watcher.timer.v1.state"
    assert all(m.subject.startswith("choria.machine.") for m in got)
