"""Fuzzed machine files dropped into the watch dir of a running daemon.

Two valid machines transition continuously; ~30 mutated and hostile files (the same corpus
the validator is fuzzed with: alias bombs, deep nesting, huge integers, random bytes…) land
beside them, and one overwrites a running machine's file. The daemon stays up, the valid
machines keep running (the overwritten one in its old version) and their seq keeps growing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import Daemon, MachinesDir
from tests.support.fuzz_corpus import fuzzed_files

pytestmark = pytest.mark.e2e

FUZZED = 30

TICKER = """
    name: %s
    version: 1.0.0
    initial_state: tick
    transitions:
      - {name: to_tock, from: [tick], destination: tock}
      - {name: to_tick, from: [tock], destination: tick}
    watchers:
      - {name: t1, type: exec, state_match: [tick], success_transition: to_tock,
         interval: 200ms, properties: {command: /bin/true}}
      - {name: t2, type: exec, state_match: [tock], success_transition: to_tick,
         interval: 200ms, properties: {command: /bin/true}}
"""


def _drop(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(raw)
    tmp.replace(path)


def _seqs(daemon: Daemon, status: dict[str, Any]) -> dict[str, int]:
    out = {}
    for name in ("ticker1", "ticker2"):
        m = daemon.machine(name, status)
        assert m is not None, f"{name} stopped running"
        out[name] = m["seq"]
    return out


def test_fuzzed_files_never_stop_the_valid_machines(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("ticker1", TICKER % "ticker1")
    ticker2 = machines.add("ticker2", TICKER % "ticker2")
    daemon.start()
    status = daemon.wait_for(
        lambda s: all(v >= 2 for v in _seqs(daemon, s).values()), what="both tickers ticking"
    )
    before = _seqs(daemon, status)
    rescans = status["reload"]["rescans"]

    files = fuzzed_files(FUZZED, seed=8)
    for i, raw in enumerate(files):
        where = machines.path / (f"fuzz{i:02d}.yaml" if i % 2 else f"fuzz{i:02d}/machine.yaml")
        _drop(where, raw)
    _drop(ticker2 / "machine.yaml", files[0])  # an invalid new version of a running machine

    def rejected(s: dict[str, Any]) -> set[str]:
        return {p["file"] for p in s["problems"] if p["severity"] == "error"}

    status = daemon.wait_for(
        lambda s: s["reload"]["rescans"] > rescans and "ticker2/machine.yaml" in rejected(s),
        timeout=30,
        what="a rescan that sees the fuzzed files",
    )
    middle = _seqs(daemon, status)
    status = daemon.wait_for(
        lambda s: all(v >= middle[k] + 4 for k, v in _seqs(daemon, s).items()),
        timeout=30,
        what="both tickers going on after the rescan",
    )
    assert all(v > before[k] for k, v in middle.items())
    assert daemon.running
    ticker = daemon.machine("ticker2", status)
    assert ticker is not None and ticker["version"] == "1.0.0"
    assert ticker["transitions_rejected"] == 0
    assert len(rejected(status)) >= FUZZED // 2, "most fuzzed files should be rejected"
    assert daemon.stop() == 0
