"""A fleet on one box for the tests: a nats-server, daemons with distinct node names (each
its own state dir, subprocesses of the real CLI) on the same two small machines, and the fleet
table as ``steward fleet status --json`` gives it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.support.daemon import Daemon, MachinesDir, base_env, run_cli
from tests.support.events import short_tmp_dir
from tests.support.nats_server import NatsServer

HEARTBEAT = 1.0  # fleet.heartbeat of the daemons: offline after 2 x 1 s + 20 s
SWITCH = """\
name: switch
version: 1.0.0
initial_state: down
transitions:
  - {name: turn_up, from: [down, maintenance], destination: up}
  - {name: turn_down, from: [up], destination: down}
  - {name: maintain, from: [down, up], destination: maintenance}
watchers: []
"""
PROBE = """\
name: probe
version: 2.0.0
initial_state: unknown
transitions:
  - {name: passed, from: [unknown, failing], destination: passing}
  - {name: failed, from: [unknown, passing], destination: failing}
watchers:
  - name: check
    type: exec
    interval: 1h
    success_transition: passed
    fail_transition: failed
    properties: {command: /bin/true}
"""

Rows = dict[tuple[str, str | None], dict[str, Any]]


def fleet_rows(url: str, env: dict[str, str], *args: str) -> Rows:
    """``steward fleet status --json`` (with ``args``), by (node, machine)."""
    result = run_cli("fleet", "status", "--nats", url, "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)["rows"]
    return {(r["node"], r["machine"]): r for r in rows}


class Fleet:
    """Daemons (not started) named ``nodes``, each running ``switch`` and ``probe``."""

    def __init__(
        self, tmp_path: Path, server: NatsServer, nodes: Iterable[str], extra_config: str = ""
    ) -> None:
        self.server = server
        machines = MachinesDir(tmp_path / "machines")
        machines.add("switch", SWITCH)
        self.probe_dir = machines.add("probe", PROBE)
        config = tmp_path / "steward.yaml"
        config.write_text(
            f"nats: {{servers: [{server.url}]}}\nfleet: {{heartbeat: {HEARTBEAT:g}s}}\n"
            + extra_config
        )
        self.env = base_env(config)
        self.state_dirs: list[Path] = []
        self.daemons: dict[str, Daemon] = {}
        for node in nodes:
            state = short_tmp_dir("fl-")
            self.state_dirs.append(state)
            self.daemons[node] = Daemon(
                machines.path, state, tmp_path / f"{node}.log", self.env, node=node
            )

    def start(self) -> None:
        for daemon in self.daemons.values():
            daemon.start()

    def rows(self, *args: str) -> Rows:
        return fleet_rows(self.server.url, self.env, *args)

    def cleanup(self) -> None:
        for daemon in self.daemons.values():
            daemon.cleanup()
        for path in self.state_dirs:
            shutil.rmtree(path, ignore_errors=True)
