"""The real Docker engine for tests: skip (or fail under STEWARD_REQUIRE_DOCKER=1) when none
answers, a label on every container a test makes and the cleanup of them all, and stopping and
starting dockerd for the outage test. ``tests/docker/setup.sh`` makes the engine and image."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from steward.watchers.docker_engine import DEFAULT_SOCKET, EngineUnavailable, knock

IMAGE = "steward-test/busybox:latest"
LABEL = "io.steward.test"  # value: one id per test; cleanup removes exactly those containers
SETUP = Path(__file__).resolve().parents[1] / "docker" / "setup.sh"  # tests/docker/setup.sh
PID_FILE = Path("/var/run/docker.pid")
REQUIRE = os.environ.get("STEWARD_REQUIRE_DOCKER") == "1"


def connect() -> docker.APIClient:
    knock(os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET)  # the SDK leaks refused sockets
    return docker.APIClient(version="auto", timeout=30, **docker.utils.kwargs_from_env())


def engine_or_skip() -> docker.APIClient:
    """A client of an engine that answers and has the test image; else skip, or fail when
    STEWARD_REQUIRE_DOCKER=1."""
    problem = ""
    try:
        api = connect()
        api.inspect_image(IMAGE)
    except docker.errors.ImageNotFound:
        problem = f"the Docker engine has no {IMAGE} image (run tests/docker/setup.sh)"
    except (EngineUnavailable, docker.errors.DockerException, OSError) as exc:
        url = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        problem = f"no Docker engine answers at {url}: {exc} (run tests/docker/setup.sh as root)"
    else:
        return api
    if REQUIRE:
        pytest.fail(f"STEWARD_REQUIRE_DOCKER=1 but {problem}", pytrace=False)
    pytest.skip(problem)


class Containers:
    """Makes labelled containers and removes every container carrying this test's label."""

    def __init__(self, api: docker.APIClient) -> None:
        self.api = api
        self.run_id = uuid.uuid4().hex[:12]
        self.labels = {LABEL: self.run_id}

    def name(self, what: str) -> str:
        return f"steward-test-{what}-{self.run_id}"

    def run(self, name: str, command: list[str] | None = None, **create: Any) -> str:
        created = self.api.create_container(
            IMAGE, command=command, name=name, labels=self.labels, detach=True, **create
        )
        self.api.start(created["Id"])
        return str(created["Id"])

    def state(self, name: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self.api.inspect_container(name)
        except docker.errors.NotFound:
            return None
        return info

    def cleanup(self, timeout: float = 90.0) -> None:
        """Remove every container with this test's label; waits for an engine that is down
        (another test may be restarting dockerd) and fails loudly if it cannot."""
        deadline = time.monotonic() + timeout
        api, error = self.api, ""
        while True:
            try:
                left = api.containers(all=True, filters={"label": f"{LABEL}={self.run_id}"})
                for c in left:
                    with contextlib.suppress(docker.errors.NotFound):
                        api.remove_container(c["Id"], force=True)
                if not left:
                    break
            except (EngineUnavailable, docker.errors.DockerException, OSError) as exc:
                error = str(exc)
                with contextlib.suppress(EngineUnavailable, docker.errors.DockerException, OSError):
                    api.close()
                    api = connect()
            if time.monotonic() >= deadline:
                api.close()
                raise AssertionError(
                    f"cannot remove the containers labelled {LABEL}="
                    f"{self.run_id}: {error or 'still there'}"
                )
            time.sleep(0.2)
        api.close()


@pytest.fixture
def containers() -> Iterator[Containers]:
    c = Containers(engine_or_skip())
    try:
        yield c
    finally:
        c.cleanup()


def engine_answers() -> bool:
    try:
        api = connect()
    except (EngineUnavailable, docker.errors.DockerException, OSError):
        return False
    api.close()
    return True


def dockerd_pid() -> int | None:
    try:
        text = PID_FILE.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def stop_dockerd(timeout: float = 60.0) -> None:
    """SIGTERM the local dockerd and wait until it is gone."""
    pid = dockerd_pid()
    assert pid is not None, f"no dockerd pid in {PID_FILE}"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"dockerd {pid} did not stop within {timeout:g}s"
        time.sleep(0.1)


def start_dockerd() -> None:
    """Start dockerd again (tests/docker/setup.sh: in the background, waited for)."""
    subprocess.run(["bash", str(SETUP)], check=True, timeout=180, capture_output=True)


def can_restart_dockerd() -> str:
    """Why this box's dockerd cannot be stopped and started by a test; "" if it can."""
    if os.geteuid() != 0:
        return "stopping dockerd needs root"
    if os.environ.get("DOCKER_HOST"):
        return "DOCKER_HOST points at a remote engine"
    if dockerd_pid() is None:
        return f"no local dockerd ({PID_FILE} is missing)"
    return ""
