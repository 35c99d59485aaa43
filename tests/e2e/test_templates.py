"""Templates in a real daemon: an exec command built from the node's facts and the machine's
data; SIGHUP re-reads the facts file and the next run's argv changes; a broken facts file is
shown by status and the last good facts stay."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, MachinesDir, wait_until, watcher, write_atomic

pytestmark = pytest.mark.e2e

SITE = """
    name: site
    version: 1.0.0
    initial_state: running
    transitions:
      - name: ran
        from: [running]
        destination: running
    watchers:
      - name: record
        type: exec
        interval: 200ms
        success_transition: ran
        properties:
          command: >-
            record.sh {{ lookup "facts.site" "nowhere" | ToUpper }}
            '{{ lookup "data.n" "no data" }}'
          environment: ['ROLE={{ lookup "facts.roles.0" "none" }}']
          parse_as_data: true
"""

# the argv (one per line) and $ROLE, written in one step; then machine data for the next run
RECORD_SH = """
    printf '%s\\n' "$@" "$ROLE" > .argv.partial && mv .argv.partial argv.txt
    echo '{"n": 7}'
"""


def argv(directory: Path) -> list[str] | None:
    try:
        return (directory / "argv.txt").read_text().splitlines()
    except FileNotFoundError:
        return None


def test_facts_and_data_reach_the_command_and_sighup_reloads_facts(
    daemon: Daemon, machines: MachinesDir, tmp_path: Path
) -> None:
    facts = tmp_path / "facts.yaml"
    write_atomic(facts, "site: lon\nroles: [web]\n")
    daemon.env["STEWARD_FACTS"] = str(facts)
    directory = machines.add("site", SITE, {"record.sh": RECORD_SH})
    daemon.start()

    # the first run has no data yet; the runs after it see what it produced
    wait_until(
        lambda: argv(directory) == ["LON", "7", "web"], 10, "argv with data", daemon.describe
    )
    m = daemon.wait_machine("site", lambda m: m["data"].get("n") == 7, what="data n=7")
    assert watcher(m, "record")["state"]["command"] == "record.sh LON '7'"  # as rendered
    assert daemon.status()["facts"]["count"] == 2

    write_atomic(facts, "site: nyc\nroles: [db]\n")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: argv(directory) == ["NYC", "7", "db"], 10, "argv after SIGHUP")

    # a broken facts file: shown by status, logged, and the last good facts stay
    write_atomic(facts, "site: [unclosed\n")
    daemon.signal(signal.SIGHUP)
    status = daemon.wait_for(lambda s: s["facts"]["error"], what="the facts error in status")
    assert "invalid facts file" in status["facts"]["error"]
    assert "keeping the last good facts" in daemon.ctl("status").stdout
    (directory / "argv.txt").unlink()
    wait_until(lambda: argv(directory) == ["NYC", "7", "db"], 10, "a run with the last good facts")
