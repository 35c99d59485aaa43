"""Governors against a real nats-server: daemons on one event loop competing for slots, a
holder killed while it holds one, a full governor and a NATS outage seen by a governed exec
watcher, and the ``steward governor`` commands as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import pytest

from steward.broker.settings import NatsSettings
from steward.clock import SystemClock
from steward.daemon.config import Config
from steward.daemon.server import Daemon, ExitCode
from steward.governor import admin
from steward.governor.slots import ConnectedClient, join, leave
from steward.watchers.base import Outcome
from tests.support.daemon import base_env, run_cli, until
from tests.support.nats_server import NatsServer

STEWARD = (sys.executable, "-m", "steward")
DEADLINE = 60.0


def holding_as(who: str) -> list[str]:
    """``governor run`` arguments that hold a slot as ``who`` for longer than any test."""
    return ["--identity", who, "--", "sleep", "120"]


# seconds: five daemons and ten queued jobs on a busy 2-core box

MACHINE = """\
name: {name}
version: 1.0.0
initial_state: work
transitions:
  - {{name: done, from: [work], destination: finished}}
  - {{name: retry, from: [work], destination: work}}
watchers:
  - name: job
    type: exec
    state_match: [work]
    success_transition: done
    fail_transition: retry
    interval: {interval}
    properties:
      command: ./job.sh
      governor: {governor}
      governor_timeout: {governor_timeout}
      environment: ["NODE={node}", "JOBS={log}"]
"""

# records when the command held its slot: "start|end <who> <epoch seconds>"
JOB = """\
#!/bin/sh
echo "start $MACHINE_NAME@$NODE $(date +%s.%N)" >> "$JOBS"
sleep {seconds}
echo "end $MACHINE_NAME@$NODE $(date +%s.%N)" >> "$JOBS"
"""


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gv-", dir="/tmp"))  # short: socket paths are bound
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(base: Path) -> Iterator[NatsServer]:
    srv = NatsServer(base / "js", base / "nats.log")
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


def node_dir(
    base: Path,
    node: str,
    machines: list[str],
    governor: str,
    *,
    seconds: float = 0.4,
    interval: str = "1m",
    governor_timeout: str = "1m",
) -> Path:
    root = base / node
    for name in machines:
        mdir = root / "machines" / name
        mdir.mkdir(parents=True)
        (mdir / "machine.yaml").write_text(
            MACHINE.format(
                name=name,
                governor=governor,
                governor_timeout=governor_timeout,
                interval=interval,
                log=base / "jobs.log",
                node=node,
            )
        )
        job = mdir / "job.sh"
        job.write_text(JOB.format(seconds=seconds))
        job.chmod(0o755)
    return root


def daemon(root: Path, node: str, url: str) -> Daemon:
    return Daemon(
        Config(
            node=node,
            machines_dir=root / "machines",
            state_dir=root / "state",
            metrics_listen=None,
            nats=NatsSettings(servers=(url,)),
        )
    )


def intervals(log: Path) -> list[tuple[str, float, float]]:
    """(who, start, end) of every job that ran, from the shared log."""
    starts: dict[str, float] = {}
    out = []
    for line in log.read_text().splitlines():
        kind, who, at = line.split()
        if kind == "start":
            starts[who] = float(at)
        else:
            out.append((who, starts.pop(who), float(at)))
    assert not starts, f"jobs that never ended: {starts}"
    return out


def max_concurrency(runs: list[tuple[str, float, float]]) -> int:
    edges = sorted([(s, 1) for _, s, _ in runs] + [(e, -1) for _, _, e in runs])
    now = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start
        now += step
        peak = max(peak, now)
    return peak


async def add_governor(url: str, name: str, capacity: int, expires: float) -> None:
    nc = await nats.connect(url)
    try:
        await admin.add(nc, name, capacity, expires)
    finally:
        await nc.close()


async def active(url: str, name: str) -> int:
    nc = await nats.connect(url)
    try:
        return (await admin.info(nc, name)).active
    finally:
        await nc.close()


async def stop_all(daemons: list[Daemon], tasks: list[asyncio.Future[ExitCode]]) -> None:
    for d in daemons:
        d.request_exit()
    async with asyncio.timeout(DEADLINE):
        codes = await asyncio.gather(*tasks)
    assert all(code is ExitCode.OK for code in codes)


async def test_five_daemons_never_run_more_commands_than_the_governor_allows(
    base: Path, server: NatsServer
) -> None:
    await add_governor(server.url, "gv_pool", capacity=2, expires=60)
    nodes = [f"n{i}" for i in range(1, 6)]
    daemons = [
        daemon(node_dir(base, n, ["job_a", "job_b"], "gv_pool"), n, server.url) for n in nodes
    ]
    tasks = [asyncio.ensure_future(d.serve()) for d in daemons]
    try:
        for d in daemons:
            await until("the machines", lambda d=d: len(d.node.machines) == 2, timeout=DEADLINE)

        def finished() -> bool:
            return all(m.state == "finished" for d in daemons for m in d.node.machines.values())

        await until("every job to finish", finished, timeout=DEADLINE)
        runs = intervals(base / "jobs.log")
        peak = max_concurrency(runs)
        span = max(e for _, _, e in runs) - min(s for _, s, _ in runs)
        print(f"\n10 governed jobs of 0.4s, capacity 2: max concurrency {peak}, took {span:.1f}s")
        assert len(runs) == 10
        assert peak == 2  # never more than the governor allows, and the limit was reached
        assert await active(server.url, "gv_pool") == 0  # every slot was given back
    finally:
        await stop_all(daemons, tasks)


async def test_a_killed_holder_s_slot_is_evicted_by_max_age(base: Path, server: NatsServer) -> None:
    await add_governor(server.url, "gv_crash", capacity=1, expires=2)
    env = base_env(base / "empty.yaml")
    (base / "empty.yaml").write_text("")
    holder = subprocess.Popen(
        [*STEWARD, "governor", "run", "gv_crash", "--nats", server.url, *holding_as("doomed")],
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        nc = await nats.connect(server.url)
        try:
            end = time.monotonic() + DEADLINE
            while not (leases := await admin.leases(nc, "gv_crash")):
                assert time.monotonic() < end, "the holder never got its slot"
                await asyncio.sleep(0.05)
        finally:
            await nc.close()
        assert [lease.holder for lease in leases] == ["doomed"]
        os.killpg(holder.pid, signal.SIGKILL)  # no chance to give the slot back
        holder.wait()
        killed_at = time.time()
        root = node_dir(base, "n1", ["job_a"], "gv_crash", seconds=0)
        d = daemon(root, "n1", server.url)
        task = asyncio.ensure_future(d.serve())
        try:
            await until("the machine", lambda: "job_a" in d.node.machines, timeout=DEADLINE)
            await until(
                "the job", lambda: d.node.get("job_a").state == "finished", timeout=DEADLINE
            )
        finally:
            await stop_all([d], [task])
        ((_, started, _),) = intervals(base / "jobs.log")
        assert leases[0].since is not None
        taken_at = leases[0].since.timestamp()
        # it ran only once the dead holder's slot aged out (2s after it was taken)
        assert started >= taken_at + 2 - 0.05, (started - taken_at, killed_at - taken_at)
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()


async def test_a_full_governor_and_a_nats_outage_are_errors_it_recovers_from(
    base: Path, server: NatsServer
) -> None:
    await add_governor(server.url, "gv_full", capacity=1, expires=300)
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    blocker = ConnectedClient(nc)
    slot = await join(blocker, "gv_full", "blocker", max_wait=5, clock=SystemClock(), rng=_rng())
    root = node_dir(
        base, "n1", ["job_a"], "gv_full", seconds=0, interval="1s", governor_timeout="1s"
    )
    d = daemon(root, "n1", server.url)
    task = asyncio.ensure_future(d.serve())
    try:
        await until("the machine", lambda: "job_a" in d.node.machines, timeout=DEADLINE)
        machine = d.node.get("job_a")
        job = machine.watchers[0]

        def detail(text: str) -> Callable[[], bool]:
            def seen() -> bool:
                last = job.last_result
                return last is not None and last.outcome is Outcome.ERROR and text in last.detail

            return seen

        await until("a full governor", detail("within 1s: it stayed full"), timeout=DEADLINE)
        assert machine.state == "work"  # the fail transition (work -> work) fired; nothing ran
        await asyncio.to_thread(server.stop)
        await until(
            "NATS away", detail("within 1s: waiting for the NATS connection"), timeout=DEADLINE
        )
        await asyncio.to_thread(server.start)
        assert not (base / "jobs.log").exists()
        assert await leave(blocker, slot)  # waits for the blocker's reconnection
        await until(
            "the job, once NATS and a slot are back",
            lambda: machine.state == "finished",
            timeout=DEADLINE,
        )
        assert len(intervals(base / "jobs.log")) == 1
    finally:
        await nc.close()
        await stop_all([d], [task])


def _rng() -> random.Random:
    return random.Random(0)


# the CLI ---------------------------------------------------------------------------------------
def cli(server: NatsServer, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command, *rest = args
    return run_cli("governor", command, "--nats", server.url, *rest, env=env)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steward: error: "), result.stderr
    return lines[0].removeprefix("steward: error: ")


def test_the_governor_commands(base: Path, server: NatsServer) -> None:
    (base / "empty.yaml").write_text("")
    env = base_env(base / "empty.yaml")

    created = cli(server, env, "add", "gv_cli", "2", "1m")
    assert created.returncode == 0, created.stderr
    assert "governor gv_cli created" in created.stdout
    assert "governor gv_cli unchanged" in cli(server, env, "add", "gv_cli", "2", "1m").stdout
    refused = cli(server, env, "add", "gv_cli", "3", "1m")
    assert refused.returncode == 1
    assert "add --force to change it" in one_line_error(refused)
    assert "updated" in cli(server, env, "add", "gv_cli", "3", "1m", "--force").stdout

    listed = json.loads(cli(server, env, "list", "--json").stdout)
    assert listed == [
        {
            "name": "gv_cli",
            "capacity": 3,
            "expires": 60.0,
            "replicas": 1,
            "active": 0,
            "subject": "choria.governor.gv_cli",
            "stream": "GOVERNOR_gv_cli",
        }
    ]

    ran = cli(server, env, "run", "gv_cli", "--identity", "me", "--", "sh", "-c", "exit 7")
    assert ran.returncode == 7  # the command's exit code
    assert cli(server, env, "run", "gv_cli", "echo 'one argument is split'").stdout == (
        "one argument is split\n"
    )

    holders = [
        subprocess.Popen(
            [*STEWARD, "governor", "run", "gv_cli", "--nats", server.url, *holding_as(who)],
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        for who in ("w1", "w2")
    ]
    try:
        deadline = time.monotonic() + DEADLINE
        while (view := json.loads(cli(server, env, "view", "gv_cli", "--json").stdout))[
            "active"
        ] < 2:
            assert time.monotonic() < deadline, view
        assert sorted(lease["holder"] for lease in view["leases"]) == ["w1", "w2"]
        assert all(lease["age"] >= 0 for lease in view["leases"])
        text = cli(server, env, "view", "gv_cli").stdout
        assert "active:   2" in text and "w1" in text and "LEASE" in text

        first = view["leases"][0]
        evicted = cli(server, env, "evict", "gv_cli", str(first["seq"]))
        assert (
            evicted.stdout
            == f"evicted {first['holder']!r} from slot {first['seq']} of governor gv_cli\n"
        )
        again = cli(server, env, "evict", "gv_cli", str(first["seq"]))
        assert one_line_error(again) == f"governor 'gv_cli' has no lease {first['seq']}"

        assert cli(server, env, "reset", "gv_cli").stdout == "governor gv_cli: freed 1 slot\n"
        assert json.loads(cli(server, env, "view", "gv_cli", "--json").stdout)["leases"] == []

        # SIGTERM: the command stops and the slot is given back (here: already freed)
        holders[0].send_signal(signal.SIGTERM)
        assert holders[0].wait(DEADLINE) == 128 + signal.SIGTERM
    finally:
        for p in holders:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    bad = cli(server, env, "view", "no.dots")
    assert bad.returncode == 2
    assert one_line_error(bad).startswith("governor name 'no.dots' contains '.'")
    missing = cli(server, env, "view", "gv_nope")
    assert one_line_error(missing) == "no governor named 'gv_nope' (no stream GOVERNOR_gv_nope)"
    assert cli(server, env, "delete", "gv_cli").returncode == 0
    assert cli(server, env, "list").stdout == "no governors\n"
    unreachable = run_cli("governor", "list", "--nats", "nats://127.0.0.1:1", env=env)
    assert one_line_error(unreachable).startswith("cannot connect to NATS at nats://127.0.0.1:1")
