"""``steward fleet demo`` (``make fleet``): a nats-server, three daemons and the dashboard from
one command, all of it gone after Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import MachinesDir, pid_alive, wait_until

pytestmark = pytest.mark.e2e

SWITCH = """\
name: switch
version: 1.0.0
initial_state: down
transitions:
  - {name: turn_up, from: [down], destination: up}
watchers: []
"""


def fleet(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "api/fleet", timeout=10) as resp:
        doc: dict[str, Any] = json.load(resp)
        return doc


def children(pid: int) -> list[int]:
    """Every process whose parent is ``pid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_demo_runs_a_fleet_and_ctrl_c_stops_all_of_it(tmp_path: Path) -> None:
    machines = MachinesDir(tmp_path / "machines")
    machines.add("switch", SWITCH)
    argv = [sys.executable, "-m", "steward", "fleet", "demo", "--listen", "127.0.0.1:0"]
    argv += ["--machines", str(machines.path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            base = Path(proc.stdout.readline().split()[-1])
            line = proc.stdout.readline()
            assert "http://127.0.0.1:" in line, line + proc.stderr.read()
            url = line.split()[3]
            spawned = children(proc.pid)
            assert len(spawned) == 4  # nats-server and three daemons

            def three_nodes_online() -> bool:
                doc = fleet(url)
                nodes = {n["node"]: n["online"] for n in doc["nodes"]}
                states = {(m["node"], m["state"]) for m in doc["machines"]}
                return nodes == dict.fromkeys(("web1", "web2", "db1"), True) and states == {
                    (n, "down") for n in nodes
                }

            wait_until(three_nodes_online, 20, "three nodes online in the dashboard")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0, proc.stderr.read()
            assert not [pid for pid in spawned if pid_alive(pid)]
            assert not base.exists()
        finally:
            proc.kill()
