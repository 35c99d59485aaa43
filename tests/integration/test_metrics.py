"""The metrics endpoint of the real daemon, parsed with prometheus_client's own text parser,
against what ``steward status --json`` says at the same moment.

The harness runs every daemon with ``--metrics-listen 127.0.0.1:0`` and finds the bound port
in ``steward status``. Each test waits until its machines are still (no watcher left to run)
before comparing, so the scrape and the status see the same numbers.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.daemon import MachinesDir
from tests.support.events import StewardDaemon, make_daemon, short_tmp_dir
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

DEADLINE = 30.0

MANUAL = """\
name: manual
version: 2.0.0
initial_state: idle
transitions:
  - {name: go, from: [idle], destination: busy}
  - {name: rest, from: [busy], destination: idle}
"""

# one check in state idle, then its transition leaves idle and the watcher stops
ONCE = """\
name: {name}
version: 1.0.0
initial_state: idle
transitions:
  - {{name: passed, from: [idle], destination: ok}}
  - {{name: failed, from: [idle], destination: down}}
watchers:
  - name: check
    type: exec
    state_match: [idle]
    success_transition: passed
    fail_transition: failed
    properties:
      command: {command}
"""

BROKEN = """\
name: broken
version: 1.0.0
initial_state: nowhere
"""


class Scrape:
    """One scrape, parsed: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def find(self, name: str, **labels: str) -> list[Sample]:
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        found = self.find(name, **labels)
        assert len(found) == 1, f"{name}{labels}: {found}"
        return found[0].value

    def total(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.find(name, **labels))


@pytest.fixture
def machines(tmp_path: Path) -> MachinesDir:
    return MachinesDir(tmp_path / "machines")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = short_tmp_dir("sm-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


def still(status: dict[str, Any]) -> bool:
    """Every machine has settled in its final state (no watcher left to run)."""
    states = {m["name"]: m["state"] for m in status["machines"]}
    return states == {"manual": "busy", "good": "ok", "bad": "down"}


def start(tmp_path: Path, machines: MachinesDir, state_dir: Path, *args: str) -> StewardDaemon:
    machines.add_file("manual.yaml", MANUAL)
    machines.add_file("good.yaml", ONCE.format(name="good", command="/bin/true"))
    machines.add_file("bad.yaml", ONCE.format(name="bad", command="/bin/false"))
    machines.add_file("broken.yaml", BROKEN)
    daemon = make_daemon(tmp_path, machines.path, state_dir, args=args)
    daemon.start()
    for name in ("go", "rest", "go"):
        daemon.transition("manual", name)
    return daemon


def test_metrics_match_steward_status(
    tmp_path: Path, machines: MachinesDir, state_dir: Path
) -> None:
    daemon = start(tmp_path, machines, state_dir)
    try:
        status = daemon.wait_for(still, DEADLINE, "machines to settle")
        scrape = Scrape(daemon.scrape())
        status = daemon.status()  # nothing moves any more: the same moment as the scrape
        now = time.time()

        listen = status["metrics"]["listen"]
        assert listen.startswith("127.0.0.1:") and not listen.endswith(":0")
        assert any(r.get("metrics") == listen for r in daemon.logs() if "metrics on" in r["msg"])

        for family in (
            "steward_machine_state",
            "steward_machine_state_seconds",
            "steward_transitions",
            "steward_transitions_rejected",
            "steward_watcher_runs",
            "steward_watcher_run_seconds",
            "steward_events_emitted",
            "steward_events_outbox",
            "steward_events_outbox_bytes",
            "steward_events_dropped",
            "steward_reload_rescans",
            "steward_reload_machines",
            "steward_reload_rejected_files",
            "process_resident_memory_bytes",
            "python_info",
        ):
            assert family in scrape.families, family
        assert scrape.value("process_resident_memory_bytes") > 0
        assert not [n for n in scrape.families if n.startswith("steward_nats")]  # no NATS

        for m in status["machines"]:
            name = m["name"]
            for state in m["states"]:
                expected = 1.0 if state == m["state"] else 0.0
                assert scrape.value("steward_machine_state", machine=name, state=state) == expected
            # a fresh state dir: every committed transition is one step of seq
            assert scrape.total("steward_transitions_total", machine=name) == m["seq"]
            in_state = scrape.value("steward_machine_state_seconds", machine=name)
            assert 0 <= in_state <= now - m["since"] + 1
            for w in m["watchers"]:
                labels = {"machine": name, "watcher": w["name"], "type": w["type"]}
                runs = scrape.total("steward_watcher_runs_total", **labels)
                assert runs == w["runs"] == 1
                assert (
                    scrape.value("steward_watcher_runs_total", **labels, outcome=w["last_outcome"])
                    == 1
                )
                assert scrape.value("steward_watcher_run_seconds_count", **labels) == w["runs"]
                assert scrape.value("steward_watcher_active", **labels) == 0

        assert scrape.value("steward_transitions_total", machine="manual", transition="go") == 2
        assert scrape.value("steward_transitions_total", machine="manual", transition="rest") == 1
        assert scrape.value("steward_transitions_total", machine="bad", transition="failed") == 1

        events = status["events"]
        assert scrape.value("steward_events_emitted_total") == events["emitted"]
        # no NATS configured: events reach local consumers only, nothing waits in the outbox
        assert scrape.value("steward_events_outbox") == events["outbox"]["events"] == 0
        assert scrape.value("steward_events_outbox_bytes") == events["outbox"]["bytes"]
        # one series per kind (watcher, lifecycle, transition): what the outbox dropped
        assert scrape.total("steward_events_dropped_total") == events["outbox"]["dropped"]
        assert {s.labels["kind"] for s in scrape.find("steward_events_dropped_total")} >= {
            "watcher",
            "lifecycle",
            "transition",
        }

        reload = status["reload"]
        assert scrape.value("steward_reload_rescans_total") == reload["rescans"] >= 1
        assert scrape.value("steward_reload_machines_total", action="started") == 3
        assert scrape.value("steward_reload_rejected_files") == 1
        assert scrape.value("steward_reload_rejected_total") == reload["rejected"] == 1
        assert len({p["file"] for p in status["problems"]}) == 1

        # a rejected transition is counted; a removed machine's series go away
        assert daemon.ctl("transition", "manual", "rest-not").returncode != 0
        (machines.path / "good.yaml").unlink()
        daemon.wait_for(lambda s: daemon.machine("good", s) is None, DEADLINE, "good removed")
        after = Scrape(daemon.scrape())
        assert after.value("steward_transitions_rejected_total", machine="manual") == 1
        assert not [s for s in after.samples if s.labels.get("machine") == "good"]
        assert after.value("steward_reload_machines_total", action="removed") == 1
        assert after.value("steward_transitions_total", machine="manual", transition="go") == 2
    finally:
        assert daemon.stop() == 0


def test_nats_connection_and_published_events(
    tmp_path: Path, machines: MachinesDir, state_dir: Path, nats_server: NatsServer
) -> None:
    daemon = start(tmp_path, machines, state_dir, "--nats-server", nats_server.url)
    try:
        daemon.wait_for(
            lambda s: still(s) and daemon.delivered_all(s), DEADLINE, "every event delivered"
        )
        scrape = Scrape(daemon.scrape())
        nats = daemon.status()["events"]["nats"]
        assert scrape.value("steward_nats_connected") == 1
        assert scrape.value("steward_events_published_total") == nats["published"] > 0
        assert scrape.value("steward_events_outbox") == 0
        assert scrape.value("steward_nats_reconnects_total") == nats["reconnects"] == 0

        nats_server.stop()
        daemon.wait_for(lambda s: not s["events"]["nats"]["connected"], DEADLINE, "disconnect")
        assert Scrape(daemon.scrape()).value("steward_nats_connected") == 0
        nats_server.start()
        daemon.wait_for(lambda s: s["events"]["nats"]["reconnects"] >= 1, DEADLINE, "reconnect")
        back = Scrape(daemon.scrape())
        assert back.value("steward_nats_connected") == 1
        assert back.value("steward_nats_reconnects_total") >= 1
    finally:
        assert daemon.stop() == 0
