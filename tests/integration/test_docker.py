"""The docker watcher against the real engine: the daemon keeping a busybox container running
through a ``docker kill``, a failing HEALTHCHECK, ``stopped`` and ``absent``, and an engine
outage (dockerd stopped, then started again). Every container is labelled and removed after."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from steward.machine.spec import WatcherSpec
from steward.watchers.base import Outcome, WatcherResult
from steward.watchers.docker import Desired, DockerProperties, DockerWatcher
from tests.support.daemon import Daemon, MachinesDir, base_env, wait_until
from tests.support.docker import (
    IMAGE,
    LABEL,
    Containers,
    can_restart_dockerd,
    containers,
    engine_answers,
    start_dockerd,
    stop_dockerd,
)
from tests.support.fakes import fake_context
from tests.support.machines import Handle

__all__ = ["containers"]  # the fixture, imported for pytest

EVENT_LATENCY = 2.0  # seconds from a docker kill to the fail transition (the interval is 5m)

KEEPER = """\
name: keeper
version: 1.0.0
initial_state: running
transitions:
  - name: restart
    from: [running, recovering]
    destination: recovering
  - name: recovered
    from: [running, recovering]
    destination: running
watchers:
  - name: agent
    type: docker
    state_match: [running, recovering]
    success_transition: recovered
    fail_transition: restart
    interval: 5m
    properties:
      container: {container}
      desired: running
      image: {image}
      command: /bin/busybox sleep 3600
      env: [ROLE=agent]
      labels: {{{label}: "{run_id}"}}
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    state_dir = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))  # short socket path
    config = tmp_path / "steward.yaml"
    config.write_text("")
    d = Daemon(tmp_path / "machines", state_dir, tmp_path / "daemon.log", base_env(config))
    (tmp_path / "machines").mkdir()
    try:
        yield d
    finally:
        d.cleanup()
        shutil.rmtree(state_dir, ignore_errors=True)


def recent_events(daemon: Daemon, kind: str) -> list[dict[str, Any]]:
    out = daemon.ctl("events", "--machine", "keeper", "--type", kind, "-n", "200", "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def event_time(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()


def test_a_machine_keeps_a_container_running_through_a_kill(
    daemon: Daemon, containers: Containers
) -> None:
    name = containers.name("keeper")
    MachinesDir(daemon.machines_dir).add(
        "keeper",
        KEEPER.format(container=name, image=IMAGE, label=LABEL, run_id=containers.run_id),
    )
    daemon.start()

    def running() -> dict[str, Any] | None:
        info = containers.state(name)
        return info if info is not None and info["State"]["Running"] else None

    first = wait_until(running, 20, f"{name} created and running", daemon.describe)
    assert first["Config"]["Labels"][LABEL] == containers.run_id
    assert first["Config"]["Labels"]["io.steward.machine"] == "keeper"
    assert "ROLE=agent" in first["Config"]["Env"]
    daemon.wait_machine(
        "keeper",
        lambda m: m["watchers"][0]["last_outcome"] == "success",
        what="the watcher to see the container running",
    )

    killed_at = time.time()
    containers.api.kill(name)
    restarted = wait_until(
        lambda: (s := running()) and s["State"]["StartedAt"] != first["State"]["StartedAt"] and s,
        20,
        f"{name} started again",
        daemon.describe,
    )
    assert restarted["Id"] == first["Id"]  # started again, not created anew
    machine = daemon.wait_state("keeper", "running")
    assert machine["seq"] == 2  # restart, then recovered

    transitions = [e for e in recent_events(daemon, "transition") if e["time"]]
    names = [e["data"]["transition"] for e in transitions]
    assert names == ["restart", "recovered"], names
    latency = event_time(transitions[0]) - killed_at
    assert latency < EVENT_LATENCY, f"fail transition {latency:.3f}s after the kill"
    failures = [
        e["data"] for e in recent_events(daemon, "watcher") if e["data"]["outcome"] == "failure"
    ]
    assert failures, "no failure state event"
    state = failures[-1]["state"]
    assert (state["status"], state["exit_code"], state["id"]) == ("exited", 137, first["Id"])
    assert state["error"] is None


class Watching:
    """One docker watcher run directly on the test's loop, its results collected."""

    def __init__(self, tmp_path: Path, props: DockerProperties, interval: float = 300) -> None:
        spec = WatcherSpec(name="agent", type="docker", properties=props, interval=interval)
        self.handle = Handle(tmp_path)
        self.watcher = DockerWatcher(spec, self.handle, fake_context(tmp_path))

    async def until(
        self, predicate: Callable[[WatcherResult], bool], timeout: float, what: str, since: int = 0
    ) -> WatcherResult:
        deadline = time.monotonic() + timeout
        while True:
            for result in self.handle.results[since:]:
                if predicate(result):
                    return result
            if time.monotonic() >= deadline:
                seen = [(r.outcome.value, r.detail) for r in self.handle.results[since:]]
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; {seen}")
            await asyncio.sleep(0.02)


def outcome(expected: Outcome) -> Callable[[WatcherResult], bool]:
    return lambda r: r.outcome is expected


@pytest.mark.parametrize(
    ("probe", "expected"), [("/bin/false", "unhealthy"), ("/bin/true", "healthy")]
)
async def test_a_healthcheck_decides(
    tmp_path: Path, containers: Containers, probe: str, expected: str
) -> None:
    name = containers.name("health")
    containers.run(
        name,
        healthcheck={"test": ["CMD", probe], "interval": 200_000_000, "retries": 1},
    )
    w = Watching(tmp_path, DockerProperties(container=name))
    w.watcher.activate()
    try:
        want = Outcome.FAILURE if expected == "unhealthy" else Outcome.SUCCESS
        result = await w.until(outcome(want), 15, f"{want.value} ({expected})")
    finally:
        await w.watcher.close()
    assert result.payload["health"] == expected
    assert result.payload["status"] == "running"
    assert w.handle.results[0].outcome is Outcome.UNCHANGED  # the healthcheck was starting
    assert containers.state(name) is not None  # observe never acts


@pytest.mark.parametrize("desired", [Desired.STOPPED, Desired.ABSENT])
async def test_stopped_stops_and_absent_removes(
    tmp_path: Path, containers: Containers, desired: Desired
) -> None:
    name = containers.name(desired.value)
    containers.run(name)
    w = Watching(tmp_path, DockerProperties(container=name, desired=desired))
    w.watcher.activate()
    try:
        result = await w.until(outcome(Outcome.SUCCESS), 30, f"{desired.value} to hold")
        info = containers.state(name)
        if desired is Desired.ABSENT:
            assert info is None
            assert result.detail == "missing (removed)"
        else:
            assert info is not None and not info["State"]["Running"]
            assert result.payload["status"] == "exited"
        # started again behind its back: reported first, then put back
        if desired is Desired.STOPPED:
            seen = len(w.handle.results)
            containers.api.start(name)
            failure = await w.until(outcome(Outcome.FAILURE), 10, "the start reported", since=seen)
            # a check that began before the start may still report "exited": look after the
            # failure only
            after = next(i for i, r in enumerate(w.handle.results) if r is failure) + 1
            await w.until(outcome(Outcome.SUCCESS), 30, "stopped again", since=after)
            info = containers.state(name)
            assert info is not None and not info["State"]["Running"]
    finally:
        await w.watcher.close()


async def test_a_kept_container_removed_behind_its_back_is_created_again(
    tmp_path: Path, containers: Containers
) -> None:
    # the die of `docker rm -f` is reported from the event and the start sent at once; the
    # removal makes that start a "no such container" error, and the destroy a create
    name = containers.name("removed")
    props = DockerProperties(
        container=name,
        desired=Desired.RUNNING,
        image=IMAGE,
        command=("/bin/busybox", "sleep", "3600"),
        labels=((LABEL, containers.run_id),),
    )
    w = Watching(tmp_path, props)
    w.watcher.activate()
    try:
        first = await w.until(outcome(Outcome.SUCCESS), 30, "the container running")
        seen = len(w.handle.results)
        await asyncio.to_thread(containers.api.remove_container, name, force=True)
        again = await w.until(
            lambda r: r.outcome is Outcome.SUCCESS and r.payload["id"] != first.payload["id"],
            30,
            "a new container running",
            since=seen,
        )
        assert again.payload["status"] == "running"
        details = [r.detail for r in w.handle.results[seen:]]
        assert not any(d.startswith("check crashed") for d in details), details
    finally:
        await w.watcher.close()


async def test_an_engine_outage_fails_and_recovers(tmp_path: Path, containers: Containers) -> None:
    why = can_restart_dockerd()
    if why:
        pytest.skip(why)
    name = containers.name("outage")
    props = DockerProperties(
        container=name,
        desired=Desired.RUNNING,
        image=IMAGE,
        command=("/bin/busybox", "sleep", "3600"),
        labels=((LABEL, containers.run_id),),
    )
    w = Watching(tmp_path, props)
    w.watcher.activate()
    try:
        await w.until(outcome(Outcome.SUCCESS), 30, "the container running")
        seen = len(w.handle.results)
        await asyncio.to_thread(stop_dockerd)
        # while dockerd shuts down it may still answer, with errors; then it is gone
        down = await w.until(
            lambda r: r.outcome is Outcome.ERROR and r.detail.startswith("engine unreachable: "),
            20,
            "an engine-unreachable error",
            since=seen,
        )
        assert down.payload["error"], down.payload
        seen = len(w.handle.results)
        await asyncio.to_thread(start_dockerd)
        up = await w.until(
            outcome(Outcome.SUCCESS), 60, "recovery after dockerd came back", since=seen
        )
        assert up.payload["error"] is None
        assert up.payload["status"] == "running"
    finally:
        await w.watcher.close()
        if not engine_answers():
            await asyncio.to_thread(start_dockerd)  # later tests need the engine
