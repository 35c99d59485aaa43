"""docker: property validation with positions, the desired-state rule, and the calls a
keeper makes to its engine after a crash (a fake engine: no Docker needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from steward.machine.spec import WatcherSpec
from steward.watchers.base import Outcome, WatcherResult
from steward.watchers.docker import Desired, DockerProperties, DockerWatcher, Pull, holds
from steward.watchers.docker_engine import (
    ContainerEvent,
    ContainerState,
    Engine,
    EngineError,
    Subscriber,
)
from tests.support.fakes import fake_context
from tests.support.machines import Handle, machine_yaml, messages, parse


def test_valid_docker_properties() -> None:
    spec = parse(
        machine_yaml(
            "docker",
            "container: agent",
            "desired: running",
            "image: steward-test/busybox:latest",
            "command: /bin/busybox sleep 3600",
            "env: [MODE=agent, EMPTY=]",
            "ports: ['8080:80', '127.0.0.1:9000:9000/udp', '53']",
            "volumes: ['/srv/data:/data:ro', 'cache:/cache']",
            "labels: {team: ops}",
            "network: host",
            "pull: missing",
            "docker_host: unix:///run/docker.sock",
        )
    )
    assert spec.watchers[0].properties == DockerProperties(
        container="agent",
        desired=Desired.RUNNING,
        image="steward-test/busybox:latest",
        command=("/bin/busybox", "sleep", "3600"),
        env=(("MODE", "agent"), ("EMPTY", "")),
        ports=(("80", ("", "8080")), ("9000/udp", ("127.0.0.1", "9000")), ("53", ("", ""))),
        volumes=("/srv/data:/data:ro", "cache:/cache"),
        labels=(("team", "ops"),),
        network="host",
        pull=Pull.MISSING,
        docker_host="unix:///run/docker.sock",
    )
    observe = parse(machine_yaml("docker", "container: agent")).watchers[0].properties
    assert observe == DockerProperties(container="agent")


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            ["desired: running"],
            [
                "m.yaml:16:7: watchers[0].properties: "
                "missing required field 'watchers[0].properties.image'",
                "m.yaml:16:7: watchers[0].properties: "
                "missing required field 'watchers[0].properties.container'",
            ],
        ),
        (
            ["container: 'bad name'", "desired: up"],
            [
                "m.yaml:16:18: watchers[0].properties.container: not a container name: 'bad name'",
                "m.yaml:17:16: watchers[0].properties.desired: "
                "must be one of observe, running, stopped, absent, got 'up'",
            ],
        ),
        (
            ["container: a", "desired: absent", "image: x"],
            [
                "m.yaml:18:14: watchers[0].properties.image: "
                "applies to desired: running only (desired is absent)"
            ],
        ),
        (
            [
                "container: a",
                "desired: running",
                "image: x",
                "ports: ['80:99999', 'x/tcp']",
                "env: ['1A=b']",
                "volumes: ['rel/path:/x', '/a:b']",
                "pull: always",
            ],
            [
                "m.yaml:19:15: watchers[0].properties.ports[0]: must be [ip:][host_port:]port"
                "[/tcp|udp|sctp] with ports 1-65535, got '80:99999'",
                "m.yaml:19:27: watchers[0].properties.ports[1]: must be [ip:][host_port:]port"
                "[/tcp|udp|sctp] with ports 1-65535, got 'x/tcp'",
                "m.yaml:20:13: watchers[0].properties.env[0]: must be KEY=VALUE with a valid "
                "variable name, got '1A=b'",
                "m.yaml:21:17: watchers[0].properties.volumes[0]: must be source:/target[:ro|rw] "
                "with an absolute host path or a volume name as source, got 'rel/path:/x'",
                "m.yaml:21:32: watchers[0].properties.volumes[1]: must be source:/target[:ro|rw] "
                "with an absolute host path or a volume name as source, got '/a:b'",
                "m.yaml:22:13: watchers[0].properties.pull: must be one of never, missing, "
                "got 'always'",
            ],
        ),
        (
            [
                "container: a",
                "docker_host: /var/run/docker.sock",
                "labels: {io.steward.machine: x}",
                "restart: always",
            ],
            [
                "m.yaml:17:20: watchers[0].properties.docker_host: must be a URL such as "
                "unix:///var/run/docker.sock or tcp://h:2375",
                "m.yaml:18:15: watchers[0].properties.labels: applies to desired: running only "
                "(desired is observe)",
                "m.yaml:18:36: watchers[0].properties.labels.io.steward.machine: is set by "
                "steward on the containers it creates",
                "m.yaml:19:7: watchers[0].properties.restart: unknown field 'restart' in docker "
                "properties (known: command, container, desired, docker_host, env, image, labels, "
                "network, ports, pull, volumes)",
            ],
        ),
    ],
    ids=["running-needs-image", "bad-name-and-desired", "running-only", "lists", "misc"],
)
def test_docker_property_errors(props: list[str], expected: list[str]) -> None:
    assert sorted(messages(machine_yaml("docker", *props))) == sorted(expected)


RUNNING = ContainerState("running", id="c1")
EXITED = ContainerState("exited", id="c1", exit_code=137)
MISSING = ContainerState("missing")


@pytest.mark.parametrize(
    ("desired", "state", "expected"),
    [
        (Desired.RUNNING, RUNNING, True),
        (Desired.RUNNING, EXITED, False),
        (Desired.RUNNING, MISSING, False),
        (Desired.RUNNING, ContainerState("running", health="healthy"), True),
        (Desired.RUNNING, ContainerState("running", health="unhealthy"), False),
        (Desired.RUNNING, ContainerState("running", health="starting"), None),
        (Desired.OBSERVE, ContainerState("paused"), False),
        (Desired.STOPPED, EXITED, True),
        (Desired.STOPPED, MISSING, True),
        (Desired.STOPPED, RUNNING, False),
        (Desired.ABSENT, MISSING, True),
        (Desired.ABSENT, EXITED, False),
    ],
)
def test_desired_state_holds(
    desired: Desired, state: ContainerState, expected: bool | None
) -> None:
    assert holds(desired, state) is expected


def test_command_as_a_list_and_env_as_a_mapping_as_compose_files_write_them() -> None:
    props = (
        parse(
            machine_yaml(
                "docker",
                "container: agent",
                "desired: running",
                "image: steward-test/busybox:latest",
                "command: [/bin/busybox, sh, -c, 'echo $MODE; sleep 3600']",
                "env: {MODE: agent, PORT: 8080}",
            )
        )
        .watchers[0]
        .properties
    )
    assert isinstance(props, DockerProperties)
    assert props.command == ("/bin/busybox", "sh", "-c", "echo $MODE; sleep 3600")
    assert props.env == (("MODE", "agent"), ("PORT", "8080"))


def test_a_bad_env_name_in_a_mapping_is_reported_where_it_is() -> None:
    text = machine_yaml(
        "docker", "container: agent", "desired: running", "image: x", "env: {1BAD: v}"
    )
    assert messages(text) == [
        "m.yaml:19:13: watchers[0].properties.env.1BAD: not a valid variable name: '1BAD'"
    ]


class FakeEngine:
    """One container's engine: records each call; ``crash`` makes its process exit (137) and
    sends ``die``, or, with ``action``, that event instead (a ``docker stop`` says ``stop``
    last)."""

    def __init__(self) -> None:
        self.state = ContainerState("running", id="c1")
        self.calls: list[str] = []
        self.subscribers: list[Subscriber] = []

    def get(self, host: str) -> FakeEngine:  # DockerEngines.get
        return self

    def subscribe(self, container: str, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def unsubscribe(self, container: str, subscriber: Subscriber) -> None:
        self.subscribers.remove(subscriber)

    def event(self, action: str, exit_code: int | None = None) -> None:
        for subscriber in list(self.subscribers):
            subscriber(ContainerEvent(action, exit_code))

    def crash(self, action: str = "die") -> None:
        self.state = ContainerState("exited", id="c1", exit_code=137)
        self.event(action, 137 if action == "die" else None)

    async def inspect(self, name: str) -> ContainerState:
        self.calls.append("inspect")
        return self.state

    async def start(self, name: str) -> None:
        self.calls.append("start")
        self.state = ContainerState("running", id="c1")


class EventOnFailure(Handle):
    """A machine handle that lets ``engine`` send ``action`` as it gets a failure."""

    def __init__(self, directory: Path, engine: FakeEngine, action: str) -> None:
        super().__init__(directory)
        self.engine, self.action = engine, action

    def submit_result(self, watcher: Any, result: WatcherResult, version: int) -> None:
        super().submit_result(watcher, result, version)
        if result.outcome is Outcome.FAILURE:
            self.engine.event(self.action)


async def _keep_through_a_crash(
    tmp_path: Path, handle: Handle, engine: FakeEngine, action: str = "die"
) -> None:
    props = DockerProperties(container="c1", desired=Desired.RUNNING, image="busybox")
    spec = WatcherSpec(name="agent", type="docker", properties=props, interval=300)
    watcher = DockerWatcher(spec, handle, fake_context(tmp_path, docker=engine))  # type: ignore[arg-type]
    watcher.activate()
    try:
        async with asyncio.timeout(5):
            while len(handle.results) < 1:
                await asyncio.sleep(0.01)
            engine.calls.clear()
            engine.crash(action)
            while len(handle.results) < 3:
                await asyncio.sleep(0.01)
    finally:
        await watcher.close()
    outcomes = [r.outcome for r in handle.results]
    assert outcomes == [Outcome.SUCCESS, Outcome.FAILURE, Outcome.SUCCESS], handle.results
    assert handle.results[1].payload["exit_code"] == 137


async def test_a_death_is_reported_from_the_die_event_then_started(tmp_path: Path) -> None:
    engine = FakeEngine()
    await _keep_through_a_crash(tmp_path, Handle(tmp_path), engine)
    # the die event is the report (an inspect would wait for the engine's cleanup); the start
    # follows at once, then one inspect says what holds
    assert engine.calls == ["start", "inspect"]


async def test_other_events_are_looked_at_then_started_on_what_was_seen(tmp_path: Path) -> None:
    engine = FakeEngine()
    await _keep_through_a_crash(tmp_path, Handle(tmp_path), engine, action="stop")
    # the drift is reported from one inspect; the start follows without asking again
    assert engine.calls == ["inspect", "start", "inspect"]


async def test_an_event_after_the_report_makes_the_start_look_again(tmp_path: Path) -> None:
    engine = FakeEngine()
    await _keep_through_a_crash(tmp_path, EventOnFailure(tmp_path, engine, "destroy"), engine)
    # reported from the die event; the destroy after it makes the start look first
    assert engine.calls == ["inspect", "start", "inspect"]


async def test_a_container_gone_before_a_start_is_an_engine_error() -> None:
    # a die reported from its event sends the start at once; a `docker rm -f` makes that start
    # a 404, which must be an error result (then the destroy event wakes a create), not a
    # crashed check
    import docker.errors

    engine = Engine("", asyncio.get_running_loop())
    engine._client = object()  # type: ignore[assignment]  # the call fails before using it

    def gone(api: Any) -> None:
        raise docker.errors.NotFound("No such container: c1")

    with pytest.raises(EngineError, match=r"^start c1: "):
        await engine._call("start c1", gone)
