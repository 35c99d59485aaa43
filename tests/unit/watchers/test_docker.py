"""docker: property validation with positions, and the desired-state rule (no engine needed)."""

from __future__ import annotations

import pytest

from steward.watchers.docker import Desired, DockerProperties, Pull, holds
from steward.watchers.docker_engine import ContainerState
from tests.support.machines import machine_yaml, messages, parse


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
