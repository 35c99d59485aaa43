"""parse_as_data: a command's JSON stdout becomes machine data, visible in status."""

from __future__ import annotations

import json

import pytest

from tests.support.daemon import (
    Daemon,
    MachinesDir,
    wait_until,
    watcher,
    write_atomic,
    write_script,
)

pytestmark = pytest.mark.e2e

# a bare <machines>/<name>.yaml: its scripts resolve against the machines dir
GAUGE = """
    name: gauge
    version: 1.0.0
    initial_state: reading
    transitions:
      - name: read
        from: [reading, broken]
        destination: reading
      - name: broke
        from: [reading, broken]
        destination: broken
    watchers:
      - name: count
        type: exec
        interval: 200ms
        success_transition: read
        fail_transition: broke
        properties:
          command: gauge.sh
          parse_as_data: true
"""

# prints the file `n` as {"count": N}, or garbage when `n` holds "garbage"
GAUGE_SH = """
    cp "$WATCHER_DATA" .seen.partial && mv .seen.partial gauge-seen.json
    n=$(cat n)
    if [ "$n" = garbage ]; then echo "not json"; else printf '{"count": %s}\\n' "$n"; fi
"""


def test_stdout_json_becomes_machine_data(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add_file("gauge.yaml", GAUGE)
    write_script(machines.path / "gauge.sh", GAUGE_SH)
    write_atomic(machines.path / "n", "1")
    daemon.start()

    m = daemon.wait_machine("gauge", lambda m: m["data"].get("count") == 1, what="count 1")
    assert m["state"] == "reading"
    assert watcher(m, "count")["last_outcome"] == "success"

    write_atomic(machines.path / "n", "5")
    daemon.wait_machine("gauge", lambda m: m["data"].get("count") == 5, what="count 5")

    # the next run is handed the machine's data through WATCHER_DATA
    def seen() -> bool:
        try:
            return bool(json.loads((machines.path / "gauge-seen.json").read_text()) == {"count": 5})
        except (FileNotFoundError, ValueError):
            return False

    wait_until(seen, 10, "a run that saw count 5 in WATCHER_DATA", daemon.describe)

    # stdout that is not JSON is a failure; the data keeps its last good value
    write_atomic(machines.path / "n", "garbage")
    m = daemon.wait_state("gauge", "broken")
    count = watcher(m, "count")
    assert count["last_outcome"] == "failure"
    assert "parse_as_data" in count["last_detail"]
    assert m["data"] == {"count": 5}
