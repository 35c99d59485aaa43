#!/usr/bin/env python3
"""Docker kill latency: from ``docker kill`` of a kept container to the fail transition.

The real daemon runs ``--machines`` keeper machines, each with a docker watcher that keeps one
busybox container (``steward-test/busybox:latest``, from ``tests/docker/setup.sh``) running,
with a 5 min interval: only the engine's event stream can make it react in time. The
benchmark kills the containers round-robin (each one only after it has stayed up the
watcher's ``STABLE`` seconds, so no crash-loop pause applies). The clock starts just before
the kill API call and stops when the control API (``GET /v1/machines/<name>`` on the Unix
socket, polled every 2 ms) shows the machine's ``seq`` moved: the fail transition committed.
The time to recovery (container running again and the machine back in ``running``) is also
measured. Every container carries the label ``io.steward.bench`` and is removed at the end.

    .venv/bin/python bench/docker_kill.py --no-record     # a look, nothing recorded
    .venv/bin/python bench/docker_kill.py                 # 20 kills, appended to RESULTS.md

Prints ``docker-kill: p50 … p99 … target p99 ≤ 500ms PASS|MISS``; exits 1 only if the
benchmark itself could not run (no engine, no image).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

import docker
import docker.errors
from benchlib import (
    Api,
    BenchError,
    Daemon,
    add_output_args,
    keep_or_remove,
    ms,
    percentile,
    positive_int,
    print_lines,
    record,
    results_section,
    run_main,
    short_state_dir,
    wait_for,
)

from steward.watchers.docker import STABLE
from steward.watchers.docker_engine import DEFAULT_SOCKET, EngineUnavailable, knock

IMAGE = "steward-test/busybox:latest"
LABEL = "io.steward.bench"
TARGET_P99 = 0.5
POLL = 0.002
KEEPER = """\
name: {name}
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
      labels: {{{label}: "{run_id}"}}
"""


@dataclass
class Figures:
    kills: int
    machines: int
    latencies: tuple[float, ...] = ()
    recoveries: tuple[float, ...] = ()

    def lines(self) -> list[tuple[str, str]]:
        lat, rec = self.latencies, self.recoveries
        return [
            ("kills x machines", f"{self.kills} over {self.machines} kept containers"),
            ("kill -> fail transition p50 / p90 / p99", _triple(lat)),
            (
                "kill -> fail transition min / mean / max",
                f"{ms(min(lat), 1)} / {ms(fmean(lat), 1)} / {ms(max(lat), 1)}",
            ),
            (
                "kill -> running again p50 / p99",
                f"{ms(percentile(rec, 50))} / {ms(percentile(rec, 99))}",
            ),
            (f"target p99 ≤ {ms(TARGET_P99)}", "PASS" if self.passed else "MISS"),
        ]

    @property
    def passed(self) -> bool:
        return percentile(self.latencies, 99) <= TARGET_P99

    def summary(self) -> str:
        return (
            f"docker-kill: p50 {ms(percentile(self.latencies, 50), 1)} "
            f"p99 {ms(percentile(self.latencies, 99), 1)} ({self.kills} kills) "
            f"target p99 ≤ {ms(TARGET_P99)} {'PASS' if self.passed else 'MISS'}"
        )


def _triple(values: tuple[float, ...]) -> str:
    return " / ".join(ms(percentile(values, q), 1) for q in (50, 90, 99))


def connect() -> docker.APIClient:
    try:
        knock(DEFAULT_SOCKET)
        api = docker.APIClient(version="auto", timeout=30, **docker.utils.kwargs_from_env())
        api.inspect_image(IMAGE)
    except docker.errors.ImageNotFound:
        raise BenchError(f"no {IMAGE} image: run tests/docker/setup.sh") from None
    except (EngineUnavailable, docker.errors.DockerException, OSError) as exc:
        raise BenchError(f"no Docker engine answers ({exc}): run tests/docker/setup.sh") from None
    return api


def run_bench(args: argparse.Namespace) -> Figures:
    figures = Figures(args.kills, args.machines)
    api = connect()
    run_id = uuid.uuid4().hex[:12]
    machines_dir = Path(tempfile.mkdtemp(prefix="steward-docker-machines-"))
    state_dir = short_state_dir("sd-")
    daemon = Daemon(machines_dir, state_dir, state_dir / "daemon.log")
    control = Api(state_dir / "steward.sock")
    names = [f"keeper{i}" for i in range(args.machines)]
    container = {n: f"steward-bench-{n}-{run_id}" for n in names}
    try:
        for n in names:
            path = machines_dir / f"{n}.yaml"
            path.write_text(
                KEEPER.format(
                    name=n, container=container[n], image=IMAGE, label=LABEL, run_id=run_id
                )
            )
            path.chmod(0o644)
        daemon.start()
        started_at = {n: wait_running(api, daemon, control, n, container[n]) for n in names}
        print(f"{args.machines} containers running; {args.kills} kills")
        latencies, recoveries = [], []
        for i in range(args.kills):
            n = names[i % len(names)]
            time.sleep(max(0.0, started_at[n] + STABLE + 0.5 - time.monotonic()))
            machine = control.get_ok(f"/v1/machines/{n}")
            assert machine is not None
            seq = machine["seq"]
            t0 = time.monotonic()
            api.kill(container[n])
            wait_for(
                daemon,
                lambda n=n, seq=seq: (
                    ((m := control.get_ok(f"/v1/machines/{n}")) and m["seq"] > seq) or None
                ),
                10,
                POLL,
                f"{n} fired its fail transition",
            )
            latencies.append(time.monotonic() - t0)
            started_at[n] = wait_running(api, daemon, control, n, container[n])
            recoveries.append(started_at[n] - t0)
        figures.latencies, figures.recoveries = tuple(latencies), tuple(recoveries)
        daemon.stop()
        return figures
    finally:
        control.close()
        daemon.close()
        with contextlib.suppress(docker.errors.DockerException, OSError):
            for c in api.containers(all=True, filters={"label": f"{LABEL}={run_id}"}):
                api.remove_container(c["Id"], force=True)
        api.close()
        keep_or_remove(args.keep, f"state and log {state_dir}", machines_dir, state_dir)


def wait_running(
    api: docker.APIClient, daemon: Daemon, control: Api, machine: str, name: str
) -> float:
    """Wait until the container runs and the machine is in ``running``; the monotonic time."""

    def ready() -> float | None:
        with contextlib.suppress(docker.errors.NotFound):
            if api.inspect_container(name)["State"]["Running"]:
                m = control.get_ok(f"/v1/machines/{machine}")
                if m is not None and m["state"] == "running":
                    return time.monotonic()
        return None

    return wait_for(daemon, ready, 60, 0.005, f"{name} running and {machine} in running")


def section(figures: Figures) -> str:
    return results_section(
        f"docker_kill: {figures.kills} kills of kept containers",
        figures.lines(),
        "keeper machines (docker watcher, desired running, interval 5m) on the real engine; "
        "clock from the kill API call to the machine's seq moving (the fail transition), "
        "polled every 2 ms over the control socket",
        footer=f"`{figures.summary()}`",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time from docker kill of a kept container to the fail transition."
    )
    parser.add_argument("--kills", type=positive_int, default=20, help="kills (20)")
    parser.add_argument(
        "--machines", type=positive_int, default=5, help="kept containers, killed in turn (5)"
    )
    add_output_args(parser, "keep the state dir and the daemon's log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def report(figures: Figures) -> None:
        print_lines(figures.lines())
        if not args.no_record:
            record(section(figures))
        print(figures.summary())

    return run_main("docker_kill", lambda: run_bench(args), report)


if __name__ == "__main__":
    sys.exit(main())
