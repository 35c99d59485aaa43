"""Disk full: the state dir on a small tmpfs the test mounts (as root), filled by a hog that
grabs every byte that frees up, then emptied again.

While the disk is full the machines keep running in memory; the error is in ``steward
status`` (``store_error``) and in the metrics, and logged once per interval, not once per
transition. What could not be written waits in memory; when space returns it is written in
order (transitions with their history and events), a ``recording_resumed`` lifecycle event
and a log line say how many transitions were written late, and the stream holds every seq
1..N once — also across a restart and a kill -9 afterwards.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import MachinesDir
from tests.support.events import (
    DEADLINE,
    PREFIX,
    STREAM,
    StewardDaemon,
    data_of,
    describe_gaps,
    make_daemon,
    parse,
    read_stream,
    short_tmp_dir,
    toggle,
)
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

NODE = "e2e"
MACHINES = ("alpha", "beta")
FULL_FOR = 10.0  # seconds the disk stays full
TMPFS_SIZE = "4m"


@pytest.fixture
def small_fs() -> Iterator[Path]:
    """A tmpfs of TMPFS_SIZE mounted on a short path under /tmp; skipped unless root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem for the state dir needs root")
    path = short_tmp_dir("sf-")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs for the state dir: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
        shutil.rmtree(path, ignore_errors=True)


class DiskHog:
    """Fills a filesystem and keeps it full: whatever frees up, it takes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stop = threading.Event()
        self._full = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-hog", daemon=True)

    def start(self) -> DiskHog:
        self._thread.start()
        if not self._full.wait(DEADLINE):
            raise AssertionError("the disk hog did not fill the filesystem")
        return self

    def release(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.path.unlink(missing_ok=True)

    def _run(self) -> None:
        with open(self.path, "wb", buffering=0) as f:
            while not self._stop.is_set():
                for size in (1 << 16, 4096, 512):
                    try:
                        while f.write(b"\0" * size):
                            pass
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                self._full.set()
                self._stop.wait(0.01)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
def daemon(tmp_path: Path, nats_server: NatsServer, small_fs: Path) -> Iterator[StewardDaemon]:
    machines = MachinesDir(tmp_path / "machines")
    for name in MACHINES:
        machines.add(name, toggle(name, "50ms"))
    d = make_daemon(
        tmp_path,
        machines.path,
        small_fs,
        args=("--nats-server", nats_server.url, "--nats-stream", STREAM),
    )
    yield d
    d.cleanup()


def store_errors(d: StewardDaemon) -> list[dict[str, object]]:
    return [r for r in d.logs() if "cannot record state" in r.get("msg", "")]


def test_disk_full_keeps_machines_running_and_loses_no_transition(
    daemon: StewardDaemon, nats_server: NatsServer, small_fs: Path
) -> None:
    d = daemon
    d.start()
    d.wait_for(
        lambda s: all(m["seq"] >= 10 for m in s["machines"]) and d.delivered_all(s),
        DEADLINE,
        "transitions recorded and delivered",
    )

    hog = DiskHog(small_fs / "hog").start()
    released = False
    try:
        full = d.wait_for(
            lambda s: all(m["store_error"] for m in s["machines"]),
            DEADLINE,
            "every machine to report the store error",
        )
        assert all("full" in m["store_error"] for m in full["machines"]), full["machines"]
        seq_at_full = {m["name"]: m["seq"] for m in full["machines"]}
        metrics = d.scrape()
        for name in MACHINES:
            assert f'steward_machine_store_error{{machine="{name}"}} 1.0' in metrics
        time.sleep(FULL_FOR)  # the disk stays full a while: a deliberate span, not a wait
        during = d.status()
        for m in during["machines"]:  # still running, in memory
            assert m["seq"] >= seq_at_full[m["name"]] + 20, m
            assert m["store_error"] and m["unrecorded_waiting"] >= 20, m
        metrics = d.scrape()
        for name in MACHINES:
            assert f'steward_machine_unrecorded_waiting{{machine="{name}"}} 0.0' not in metrics
        logged = store_errors(d)
        # once per machine per interval (10 s), not once per transition
        assert 1 <= len(logged) <= 3 * len(MACHINES), [r["msg"] for r in logged]
        hog.release()
        released = True
    finally:
        if not released:
            hog.release()

    back = d.wait_for(
        lambda s: all(m["store_error"] is None for m in s["machines"]) and d.delivered_all(s),
        DEADLINE,
        "recording to resume and the outbox to drain",
    )
    metrics = d.scrape()
    for name in MACHINES:
        assert f'steward_machine_store_error{{machine="{name}"}} 0.0' in metrics
        assert f'steward_machine_unrecorded_waiting{{machine="{name}"}} 0.0' in metrics
        assert f'steward_machine_lost_transitions_total{{machine="{name}"}} 0.0' in metrics
    resumed_logs = [r for r in d.logs() if "recording state again" in r.get("msg", "")]
    assert {r["machine"] for r in resumed_logs} == set(MACHINES), resumed_logs

    # a clean restart and a kill -9: seq continues, never reused
    last = {m["name"]: m["seq"] for m in back["machines"]}
    assert d.stop() == 0
    d.start()
    d.kill9()
    d.start()
    final = {name: int(d.transition(name, "halt")["seq"]) for name in MACHINES}
    d.wait_for(d.delivered_all, DEADLINE, "every event delivered")
    assert d.stop() == 0
    db = sqlite3.connect(small_fs / "steward.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        history = {
            name: [
                seq
                for (seq,) in db.execute(
                    "SELECT seq FROM history WHERE machine=? ORDER BY seq", (name,)
                )
            ]
            for name in MACHINES
        }
    finally:
        db.close()

    events = [parse(m.body) for m in read_stream(nats_server.url, subject=f"{PREFIX}.{NODE}.>")]
    for name in MACHINES:
        assert final[name] > last[name]
        seqs = [
            data_of(e)["seq"]
            for e in events
            if e.get_subject() == name and e.get_type().endswith(".transition")
        ]
        reports = [
            data_of(e)
            for e in events
            if e.get_subject() == name
            and e.get_type().endswith(".lifecycle")
            and data_of(e)["step"] == "recording_resumed"
        ]
        # normally one report; a write may slip through while the hog catches up
        assert 1 <= len(reports) <= 3, reports
        assert all(r["unrecorded_transitions"] == 0 for r in reports), reports
        late = sum(r["recorded_late"] for r in reports)
        assert late >= 20, reports
        # every seq up to the last, once each, in order: nothing lost, nothing reused
        assert seqs == list(range(1, final[name] + 1)), f"{name}: {describe_gaps(seqs)}"
        # the history on disk has no hole either (its newest entries, as many as it keeps)
        kept = history[name]
        assert kept == list(range(final[name] - len(kept) + 1, final[name] + 1)), kept
        print(f"\n{name}: delivered {len(seqs)} seqs up to {final[name]}; {late} written late")
    print(f"store errors logged: {[r['msg'] for r in logged]}")
