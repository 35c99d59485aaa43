"""docker: keep one container (by name) in its desired state, reacting to the engine's events.

``desired``: ``observe`` (default: report, never act), ``running`` (create it from ``image``
when missing, start it when stopped, unpause it when paused), ``stopped`` (stop it; a missing
container counts as stopped), ``absent`` (remove it). Success when the desired state holds
(for running and observe: running and, with a HEALTHCHECK, healthy); failure otherwise;
"unchanged" while a healthcheck is still starting.

A drift from a state that held at the previous check is reported as a failure first, and
acted on in a check that follows at once: the fail transition is not held up by the engine's
start, and the machine sees the drift even when it is repaired. That check acts on the state
the report saw, without asking the engine again, unless an engine event came meanwhile (a
crash -> running again is then one inspect, the start, one inspect). A check right after the
watcher becomes active, or after a failure was reported, acts first and reports what holds
then. A container that goes down again within ``STABLE`` seconds of being started is started
again after a growing pause (1s, 2s, 4s … ``BACKOFF_MAX``), so a crash loop does not spin.

The watcher subscribes to its engine's event stream (``docker_engine``): die, stop, start,
health_status, destroy … of its container run the check at once; ``interval`` is only a
reconcile backstop. An unreachable engine is an error result (fail transition) with the error
in the payload; the check is retried with backoff, and at once when the stream reconnects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shlex
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self, TypeVar

from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult
from steward.watchers.docker_engine import (
    ContainerConfig,
    ContainerEvent,
    ContainerState,
    Engine,
    EngineError,
    EngineUnavailable,
)

TYPE = "docker"
DEFAULT_INTERVAL = 30.0  # the reconcile backstop; events drive the watcher
STABLE = 10.0  # seconds a container we started must stay up for its restart backoff to reset
BACKOFF_MAX = 30.0
MANAGED_LABELS = ("io.steward.machine", "io.steward.watcher")
_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_PORT_RE = re.compile(r"^\d{1,5}$")
RUNNING_ONLY = ("image", "command", "env", "ports", "volumes", "labels", "network", "pull")


class Desired(StrEnum):
    OBSERVE = "observe"
    RUNNING = "running"
    STOPPED = "stopped"
    ABSENT = "absent"


class Pull(StrEnum):
    NEVER = "never"
    MISSING = "missing"


@dataclass(frozen=True)
class DockerProperties:
    container: str
    desired: Desired = Desired.OBSERVE
    image: str = ""
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[tuple[str, tuple[str, str]], ...] = ()
    volumes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    network: str | None = None
    pull: Pull = Pull.NEVER
    docker_host: str = ""  # "": the daemon's environment (DOCKER_HOST, else the local socket)

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        container = fields.string("container", required=True) or ""
        if container and not _NAME_RE.match(container):
            fields.error("container", f"not a container name: {container!r}")
        desired = _choice(fields, "desired", Desired, Desired.OBSERVE)
        if desired is not Desired.RUNNING:
            for key in RUNNING_ONLY:
                if fields.has(key):
                    fields.error(key, f"applies to desired: running only (desired is {desired})")
        image = fields.string("image", required=desired is Desired.RUNNING) or ""
        command: tuple[str, ...] = ()
        if isinstance(fields.raw("command"), list):  # the exec form, as in a compose file
            command = tuple(text for text, _ in fields.strings("command"))
        else:
            text = fields.string("command")
            if text is not None:
                try:
                    command = tuple(shlex.split(text))
                except ValueError as exc:
                    fields.error("command", f"cannot split command: {exc}")
        docker_host = fields.string("docker_host") or ""
        if docker_host and "://" not in docker_host:
            fields.error(
                "docker_host", "must be a URL such as unix:///var/run/docker.sock or tcp://h:2375"
            )
        props = cls(
            container=container.lstrip("/"),
            desired=desired,
            image=image,
            command=command,
            env=_env(fields),
            ports=_ports(fields),
            volumes=_volumes(fields),
            labels=_labels(fields),
            network=fields.string("network"),
            pull=_choice(fields, "pull", Pull, Pull.NEVER),
            docker_host=docker_host,
        )
        fields.finish(" in docker properties")
        return props


E = TypeVar("E", bound=StrEnum)


def _env(fields: Fields) -> tuple[tuple[str, str], ...]:
    """``env`` as a list of ``KEY=VALUE`` or, as compose files write it, a mapping."""
    mapping = fields.mapping("env") if isinstance(fields.raw("env"), dict) else None
    if mapping is None:
        return fields.assignments("env")
    out: list[tuple[str, str]] = []
    for key in list(mapping.keys()):
        value = mapping.string(key, non_empty=False)
        if not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            mapping.problems.add(mapping.key_pos(key), f"not a valid variable name: {key!r}")
        elif value is not None:
            out.append((key, value))
    mapping.finish()
    return tuple(out)


def _choice(fields: Fields, key: str, kind: type[E], default: E) -> E:
    value = fields.choice(key, [m.value for m in kind])
    return default if value is None else kind(value)


def _ports(fields: Fields) -> tuple[tuple[str, tuple[str, str]], ...]:
    """``[ip:][host:]container[/tcp|udp|sctp]``, as ``docker run -p`` takes them."""
    ports: list[tuple[str, tuple[str, str]]] = []
    for item, pos in fields.strings("ports"):
        spec, _, proto = item.partition("/")
        parts = spec.rsplit(":", 2)
        container = parts[-1]
        host = parts[-2] if len(parts) > 1 else ""
        ip = parts[0].strip("[]") if len(parts) > 2 else ""
        numbers = [p for p in (container, host) if p]
        if (
            proto not in ("", "tcp", "udp", "sctp")
            or not all(_PORT_RE.match(p) and 1 <= int(p) <= 65535 for p in numbers)
            or not container
        ):
            fields.problems.add(
                pos,
                f"must be [ip:][host_port:]port[/tcp|udp|sctp] with ports 1-65535, got {item!r}",
            )
            continue
        ports.append((f"{container}/{proto}" if proto else container, (ip, host)))
    return tuple(ports)


def _volumes(fields: Fields) -> tuple[str, ...]:
    """``source:target[:ro|rw]``: source an absolute host path or a volume name."""
    volumes: list[str] = []
    for item, pos in fields.strings("volumes"):
        parts = item.split(":")
        source, target = parts[0], parts[1] if len(parts) > 1 else ""
        mode = parts[2] if len(parts) > 2 else "rw"
        if (
            len(parts) not in (2, 3)
            or not (source.startswith("/") or _VOLUME_NAME_RE.match(source))
            or not target.startswith("/")
            or mode not in ("ro", "rw")
        ):
            fields.problems.add(
                pos,
                "must be source:/target[:ro|rw] with an absolute host path or a volume name "
                f"as source, got {item!r}",
            )
            continue
        volumes.append(item)
    return tuple(volumes)


def _labels(fields: Fields) -> tuple[tuple[str, str], ...]:
    f = fields.mapping("labels")
    if f is None:
        return ()
    labels: list[tuple[str, str]] = []
    for key in list(f.keys()):
        value = f.string(key, non_empty=False)
        if key in MANAGED_LABELS:
            f.error(key, "is set by steward on the containers it creates")
        elif value is not None:
            labels.append((key, value))
    f.finish()
    return tuple(labels)


def holds(desired: Desired, state: ContainerState) -> bool | None:
    """Whether the desired state holds; None while a healthcheck is still starting."""
    if desired is Desired.ABSENT:
        return not state.exists
    if desired is Desired.STOPPED:
        return not state.running
    if not state.running or state.health == "unhealthy":
        return False
    return None if state.health == "starting" else True


def describe(state: ContainerState) -> str:
    if not state.exists:
        return "missing"
    if state.running:
        return "running" + (f" ({state.health})" if state.health else "")
    if state.status == "exited":
        return f"exited with code {state.exit_code}"
    return state.status


class DockerWatcher(Watcher):
    TYPE = TYPE
    Properties = DockerProperties
    default_interval = DEFAULT_INTERVAL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._engine: Engine | None = None
        self._held = False  # the desired state held at the previous check
        self._failures_in_row = 0  # engine unreachable; sets the retry backoff
        self._crashes_in_row = 0  # went down within STABLE of our start; sets the restart pause
        self._started_at: float | None = None  # monotonic, when we last started the container
        self._not_before = 0.0  # monotonic: no start before this (crash-loop pause)
        self._retry: asyncio.TimerHandle | None = None
        self.last_event: str | None = None
        self._events = 0  # engine events (and reconnections) seen, to know a state is fresh
        self._died: ContainerEvent | None = None  # the newest event, when it is a die
        self._seen: ContainerState | None = None  # the newest state a result reported
        # the drift just reported: (self._events then, the state seen); the check that follows
        # acts on it without asking the engine again unless an event came meanwhile
        self._drift: tuple[int, ContainerState] | None = None

    @property
    def props(self) -> DockerProperties:
        p = self.spec.properties
        assert isinstance(p, DockerProperties)
        return p

    # events ----------------------------------------------------------------------------------
    def activate(self) -> None:
        self._held = False
        self._drift = None
        self._died = None
        if self._engine is None:
            self._engine = self.context.docker.get(self.props.docker_host)
            self._engine.subscribe(self.props.container, self._on_event)
        super().activate()

    def deactivate(self) -> None:
        self._leave()
        super().deactivate()

    async def close(self) -> None:
        self._leave()
        await super().close()

    def _leave(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._engine is not None:
            self._engine.unsubscribe(self.props.container, self._on_event)
            self._engine = None

    def _on_event(self, event: ContainerEvent) -> None:
        if event.action:
            self.last_event = event.action
        self._events += 1
        self._died = event if event.action == "die" else None
        self.wake()

    def _wake_in(self, seconds: float) -> None:
        if self._retry is not None:
            self._retry.cancel()
        self._retry = asyncio.get_running_loop().call_later(seconds, self.wake)

    # the check -------------------------------------------------------------------------------
    async def check(self) -> WatcherResult:
        engine = self._engine or self.context.docker.get(self.props.docker_host)
        drift, self._drift = self._drift, None
        died, self._died = self._died, None
        try:
            if drift is not None and drift[0] == self._events:
                state = drift[1]  # nothing happened since the drift was seen: act on it
            elif died is not None and (dead := self._dead(died)) is not None:
                state = dead  # the engine said it died: no inspect, which waits for its cleanup
            else:
                state = await engine.inspect(self.props.container)
            verdict = holds(self.props.desired, state)
            if verdict is False and self._acts_on(state):
                if self._held:  # report the drift first; act in the check that follows
                    self._held = False
                    self._drift = self._events, state
                    self.wake()
                    return self._result(Outcome.FAILURE, state, describe(state))
                return await self._converge(engine, state)
        except EngineUnavailable as exc:
            return self._unreachable(str(exc))
        except EngineError as exc:
            self._failures_in_row = 0
            self._held = False
            return self._result(Outcome.ERROR, None, str(exc), error=str(exc))
        self._failures_in_row = 0
        return self._verdict(verdict, state, describe(state))

    def _dead(self, died: ContainerEvent) -> ContainerState | None:
        """The state after a ``die`` of the container kept running that ran at the previous
        check; None for any other watcher. The engine sends ``die`` holding the container's
        lock, before its cleanup (network, mounts: tens of ms); an inspect would wait for it,
        and a start waits for it anyway."""
        seen = self._seen
        if self.props.desired is not Desired.RUNNING or not self._held or seen is None:
            return None
        return dataclasses.replace(
            seen,
            status="exited",
            exit_code=died.exit_code,
            health=None,
            finished_at=None,
            error=None,
        )

    def _acts_on(self, state: ContainerState) -> bool:
        """Whether a check may act: never when observing, nor on a running, unhealthy container
        (what to do about that is the machine's call)."""
        desired = self.props.desired
        return desired is not Desired.OBSERVE and not (desired is Desired.RUNNING and state.running)

    async def _converge(self, engine: Engine, state: ContainerState) -> WatcherResult:
        """Act towards the desired state, then report what holds."""
        props = self.props
        now = self.clock.monotonic()
        action = ""
        if props.desired is Desired.RUNNING:
            if now < self._not_before:
                wait = self._not_before - now
                self._wake_in(wait)
                return self._result(
                    Outcome.UNCHANGED, state, f"{describe(state)}; starting again in {wait:.1f}s"
                )
            self._note_start(now)
            if not state.exists:
                await engine.create(self._config())
                action = "created"
            if state.status == "paused":
                await engine.unpause(props.container)
                action = "unpaused"
            else:
                await engine.start(props.container)
                action = f"{action} and started" if action else "started"
        elif props.desired is Desired.STOPPED:
            await engine.stop(props.container)
            action = "stopped"
        else:
            await engine.remove(props.container)
            action = "removed"
        after = await engine.inspect(props.container)
        self._failures_in_row = 0
        return self._verdict(holds(props.desired, after), after, f"{describe(after)} ({action})")

    def _note_start(self, now: float) -> None:
        """Count a start; a container that went down soon after the last one waits longer."""
        if self._started_at is not None and now - self._started_at < STABLE:
            self._crashes_in_row += 1
        else:
            self._crashes_in_row = 0
        self._started_at = now
        pause = min(BACKOFF_MAX, 2.0 ** (self._crashes_in_row - 1)) if self._crashes_in_row else 0
        self._not_before = now + pause

    def _verdict(self, verdict: bool | None, state: ContainerState, detail: str) -> WatcherResult:
        self._held = verdict is True
        if verdict is None:
            return self._result(Outcome.UNCHANGED, state, f"{detail}; healthcheck starting")
        return self._result(Outcome.SUCCESS if verdict else Outcome.FAILURE, state, detail)

    def _unreachable(self, error: str) -> WatcherResult:
        self._held = False
        self._failures_in_row += 1
        self._wake_in(min(BACKOFF_MAX, 2.0 ** (self._failures_in_row - 1)))
        return self._result(Outcome.ERROR, None, f"engine unreachable: {error}", error=error)

    def _config(self) -> ContainerConfig:
        p = self.props
        managed = (("io.steward.machine", self.machine.name), ("io.steward.watcher", self.name))
        return ContainerConfig(
            name=p.container,
            image=p.image,
            command=p.command,
            env=p.env,
            ports=p.ports,
            volumes=p.volumes,
            labels=(*p.labels, *managed),
            network=p.network,
            pull_missing=p.pull is Pull.MISSING,
        )

    def _result(
        self,
        outcome: Outcome,
        state: ContainerState | None,
        detail: str,
        *,
        error: str | None = None,
    ) -> WatcherResult:
        if state is not None:
            self._seen = state
        return WatcherResult(outcome, detail, payload=self._payload(state, error))

    def _payload(self, state: ContainerState | None, error: str | None) -> dict[str, Any]:
        s = state or ContainerState("unknown")
        return {
            "container": self.props.container,
            "desired": self.props.desired.value,
            "docker_host": self.props.docker_host or None,
            "id": s.id,
            "image": s.image,
            "image_id": s.image_id,
            "status": s.status,
            "health": s.health,
            "exit_code": s.exit_code,
            "restart_count": s.restart_count,
            "started_at": s.started_at,
            "finished_at": s.finished_at,
            "container_error": s.error,
            "last_event": self.last_event,
            "error": error,
        }


__all__ = ["TYPE", "Desired", "DockerProperties", "DockerWatcher", "Pull", "holds"]
