"""The metric watcher in the real daemon: its command's values appear on ``/metrics`` under
Choria's names with the configured labels, change with the command's output, and go away
when a check fails."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.daemon import MachinesDir, wait_until
from tests.support.events import DEADLINE, StewardDaemon, make_daemon, short_tmp_dir

pytestmark = pytest.mark.e2e

MACHINE = """\
name: meter
version: 1.0.0
initial_state: measuring
transitions:
  - {name: broke, from: [measuring], destination: measuring}
watchers:
  - name: Load Avg
    type: metric
    state_match: [measuring]
    fail_transition: broke
    properties:
      command: ./measure.sh
      interval: 1s
      store: true
      labels: {site: lon}
"""

# Choria's JSON while value.txt holds a number, a failure once it holds "broken"
MEASURE = """\
v=$(cat value.txt)
[ "$v" = broken ] && exit 1
echo "{\\"labels\\": {\\"unit\\": \\"load\\"}, \\"metrics\\": {\\"one\\": $v, \\"five\\": 0.5}}"
"""


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = short_tmp_dir("sx-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def samples(daemon: StewardDaemon) -> dict[str, tuple[dict[str, str], float]]:
    out = {}
    for family in text_string_to_metric_families(daemon.scrape()):
        for s in family.samples:
            if s.name.startswith("choria_machine_metric_watcher_"):
                out[s.name] = (s.labels, s.value)
    return out


def test_metric_values_are_on_the_metrics_endpoint(tmp_path: Path, state_dir: Path) -> None:
    machines = MachinesDir(tmp_path / "machines")
    directory = machines.add("meter", MACHINE, {"measure.sh": MEASURE})
    (directory / "value.txt").write_text("1.25\n")
    daemon = make_daemon(tmp_path, machines.path, state_dir)
    daemon.start()
    try:
        found = wait_until(lambda: samples(daemon), DEADLINE, "the metric samples")
        labels = {"format": "choria", "unit": "load", "site": "lon", "machine": "meter"}
        assert found == {
            "choria_machine_metric_watcher_load_avg_one": (labels, 1.25),
            "choria_machine_metric_watcher_load_avg_five": (labels, 0.5),
        }
        (directory / "value.txt").write_text("7\n")
        wait_until(
            lambda: (
                samples(daemon).get("choria_machine_metric_watcher_load_avg_one", ({}, 0))[1] == 7
            ),
            DEADLINE,
            "the new value",
        )
        stored = daemon.machine("meter")["data"]["metric"]["Load Avg"]  # type: ignore[index]
        assert stored["metrics"]["one"] in (7, 1.25)  # store: true keeps the last reading

        (directory / "value.txt").write_text("broken\n")
        wait_until(lambda: not samples(daemon), DEADLINE, "the samples to go")
    finally:
        daemon.stop()
