"""One Docker engine as the docker watchers see it: blocking SDK calls moved off the event
loop, and one event stream shared by every watcher on that engine.

``DockerEngines.get`` (``docker_engines``) gives the engine of a ``docker_host`` (``""``:
the daemon's environment, ``DOCKER_HOST`` or the local socket), one per host. Its calls
(``inspect``, ``create``, ``start``, ``stop``, ``remove``) run the ``docker`` SDK in a
worker thread and raise ``EngineUnavailable`` when the engine cannot be reached,
``EngineError`` when it answered with an error. While any watcher subscribes, one thread
reads the engine's event stream and hands each container event to the loop
(``call_soon_threadsafe``), where the subscribers of that container name are called with a
``ContainerEvent`` (its action, and a death's exit code); when the stream breaks (the engine
stopped) the thread reconnects with backoff, and every subscriber is called on each
connection change so it can look again. The stream thread ends when the last subscriber
leaves.

The daemon owns one ``DockerEngines`` and hands it to every watcher through the watcher
context, so all the docker watchers of a daemon share one stream per engine, and each test
(or each daemon in one process) has engines of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

log = logging.getLogger("steward.watcher.docker")

CALL_TIMEOUT = 30.0  # seconds for one engine API call
KNOCK_TIMEOUT = 5.0  # seconds to connect to the engine's Unix socket
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
STOP_TIMEOUT = 10  # seconds a container gets between SIGTERM and SIGKILL on stop
RECONNECT_MIN = 0.2  # seconds before the event stream reconnects, doubling up to the max
RECONNECT_MAX = 5.0
# the container events a watcher is woken for (health_status comes as "health_status: x")
EVENTS = ("create", "start", "restart", "die", "stop", "kill", "oom", "pause", "unpause")
EVENTS_PREFIXED = ("health_status", "destroy", "rename")


@dataclass(frozen=True)
class ContainerEvent:
    """One container event from the engine's stream; ``action`` is "" for a connection change
    (the stream connected or broke: look again)."""

    action: str
    exit_code: int | None = None  # die: the exit code of the container's main process


CONNECTION_CHANGED = ContainerEvent("")
Subscriber = Callable[[ContainerEvent], None]


class EngineUnavailable(Exception):
    """The engine could not be reached (no socket, refused, timed out, broken connection)."""


class EngineError(Exception):
    """The engine answered with an error (no such image, a conflict, a bad request)."""


@dataclass(frozen=True)
class ContainerState:
    """What ``inspect`` tells about one container; ``status`` is ``missing`` if it is not."""

    status: str
    id: str | None = None
    image: str | None = None
    image_id: str | None = None
    health: str | None = None  # None: the container has no HEALTHCHECK
    exit_code: int | None = None
    restart_count: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None  # the engine's own State.Error (e.g. a failed start)

    @property
    def exists(self) -> bool:
        return self.status != "missing"

    @property
    def running(self) -> bool:
        return self.status == "running"

    @classmethod
    def from_inspect(cls, info: dict[str, Any]) -> ContainerState:
        state = info.get("State") or {}
        health = state.get("Health") or {}
        return cls(
            status=str(state.get("Status") or "unknown"),
            id=info.get("Id"),
            image=(info.get("Config") or {}).get("Image"),
            image_id=info.get("Image"),
            health=health.get("Status") or None,
            exit_code=state.get("ExitCode"),
            restart_count=info.get("RestartCount"),
            started_at=state.get("StartedAt"),
            finished_at=state.get("FinishedAt"),
            error=state.get("Error") or None,
        )


@dataclass(frozen=True)
class ContainerConfig:
    """What ``create`` needs: the SDK's arguments, built from the watcher's properties."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[tuple[str, tuple[str, str]], ...] = ()  # "80/udp" -> (host ip, host port)
    volumes: tuple[str, ...] = ()  # docker bind strings: src:dst[:mode]
    labels: tuple[tuple[str, str], ...] = ()
    network: str | None = None
    pull_missing: bool = False


class Engine:
    def __init__(self, host: str, loop: asyncio.AbstractEventLoop) -> None:
        self.host = host
        self._loop = loop
        self._client: docker.APIClient | None = None
        self._client_lock = threading.Lock()
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._stream_thread: threading.Thread | None = None
        self._stream: Any = None
        self._stop: threading.Event | None = None
        self.connected = False

    @property
    def label(self) -> str:
        return self.host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET

    # the client -------------------------------------------------------------------------------
    def _new_client(self) -> docker.APIClient:
        """A client with the engine's API version (asks the engine: fails when it is down)."""
        sdk = _sdk()
        knock(self.label)
        if self.host:
            return sdk.APIClient(base_url=self.host, version="auto", timeout=CALL_TIMEOUT)
        kwargs = sdk.utils.kwargs_from_env()
        return sdk.APIClient(version="auto", timeout=CALL_TIMEOUT, **kwargs)

    def _api(self) -> docker.APIClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _drop_client(self) -> None:
        """Forget the client (its pooled connections may point at an engine that restarted)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def _call(self, what: str, fn: Callable[[docker.APIClient], Any]) -> Any:
        sdk = _sdk()

        def run() -> Any:
            try:
                return fn(self._api())
            except EngineUnavailable as exc:
                raise EngineUnavailable(f"{self.label}: {exc}") from exc
            except sdk.errors.APIError as exc:  # NotFound too: the container went meanwhile
                raise EngineError(f"{what}: {_explain(exc)}") from exc
            except (sdk.errors.DockerException, OSError) as exc:
                self._drop_client()
                raise EngineUnavailable(f"{self.label}: {_explain(exc)}") from exc

        return await asyncio.to_thread(run)

    # the calls -------------------------------------------------------------------------------
    async def inspect(self, name: str) -> ContainerState:
        sdk = _sdk()

        def inspect(api: docker.APIClient) -> ContainerState:
            try:
                info = api.inspect_container(name)
            except sdk.errors.NotFound:
                return ContainerState("missing")
            return ContainerState.from_inspect(info)

        result: ContainerState = await self._call(f"inspect {name}", inspect)
        return result

    async def create(self, config: ContainerConfig) -> str:
        """Create the container (pulling its image first if allowed and missing); its id."""

        sdk = _sdk()

        def create(api: docker.APIClient) -> str:
            if config.pull_missing:
                try:
                    api.inspect_image(config.image)
                except sdk.errors.NotFound:
                    api.pull(config.image)
            host_config = api.create_host_config(
                port_bindings={port: binding for port, binding in config.ports} or None,
                binds=list(config.volumes) or None,
                network_mode=config.network,
            )
            try:
                created = api.create_container(
                    config.image,
                    command=list(config.command) or None,
                    name=config.name,
                    environment=[f"{k}={v}" for k, v in config.env] or None,
                    labels=dict(config.labels),
                    ports=[_port_spec(port) for port, _ in config.ports] or None,
                    volumes=[_bind_target(v) for v in config.volumes] or None,
                    host_config=host_config,
                    detach=True,
                )
            except sdk.errors.ImageNotFound as exc:
                raise EngineError(
                    f"image {config.image} is not on the engine"
                    + ("" if config.pull_missing else " (pull: never)")
                ) from exc
            return str(created["Id"])

        result: str = await self._call(f"create {config.name}", create)
        return result

    async def start(self, name: str) -> None:
        await self._call(f"start {name}", lambda api: api.start(name))

    async def unpause(self, name: str) -> None:
        await self._call(f"unpause {name}", lambda api: api.unpause(name))

    async def stop(self, name: str) -> None:
        await self._call(f"stop {name}", lambda api: api.stop(name, timeout=STOP_TIMEOUT))

    async def remove(self, name: str) -> None:
        await self._call(f"remove {name}", lambda api: api.remove_container(name, force=True))

    # the event stream ------------------------------------------------------------------------
    def subscribe(self, container: str, subscriber: Subscriber) -> None:
        """Call ``subscriber`` (on the loop) for each event of ``container`` and on each
        connection change; starts the stream if it is the first subscriber."""
        self._subscribers.setdefault(container, set()).add(subscriber)
        if self._stream_thread is None or not self._stream_thread.is_alive():
            self._stop = threading.Event()
            self._stream_thread = threading.Thread(
                target=self._read_events,
                args=(self._stop,),
                name=f"docker-events:{self.host or 'env'}",
                daemon=True,
            )
            self._stream_thread.start()

    def unsubscribe(self, container: str, subscriber: Subscriber) -> None:
        """Stop calling ``subscriber``; the last one out ends the stream."""
        subs = self._subscribers.get(container)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._subscribers[container]
        if not self._subscribers and self._stop is not None:
            self._stop.set()
            self._stream_thread = None
            self._close_stream()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()  # unblocks the thread's read

    def _read_events(self, stop: threading.Event) -> None:
        """The stream thread: read container events until ``stop``; reconnect with backoff."""
        sdk = _sdk()
        delay = RECONNECT_MIN
        while not stop.is_set():
            client: docker.APIClient | None = None
            try:
                client = self._new_client()
                stream = client.events(decode=True, filters={"type": "container"})
            except (EngineUnavailable, sdk.errors.DockerException, OSError) as exc:
                if client is not None:
                    client.close()
                self._connection(stop, False, _explain(exc))
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            if self._stop is stop:  # still the engine's current stream (not a stale thread)
                self._stream = stream
            if stop.is_set():  # unsubscribed while connecting
                with contextlib.suppress(Exception):
                    stream.close()
                client.close()
                break
            delay = RECONNECT_MIN
            self._connection(stop, True, "")
            try:
                for event in stream:
                    if stop.is_set():
                        break
                    self._forward(event)
            except (sdk.errors.DockerException, OSError, ValueError) as exc:
                log.debug("docker event stream broke: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
                with contextlib.suppress(Exception):
                    client.close()
            if not stop.is_set():
                self._connection(stop, False, "the event stream ended")
                stop.wait(delay)

    def _connection(self, stop: threading.Event, up: bool, why: str) -> None:
        if stop.is_set() or up == self.connected:
            return
        self.connected = up
        if up:
            log.info("docker event stream connected", extra={"docker_host": self.label})
        else:
            log.warning("docker event stream lost: %s", why, extra={"docker_host": self.label})
            self._drop_client()
        self._post(None, CONNECTION_CHANGED)

    def _forward(self, event: dict[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        if not (action in EVENTS or action.startswith(EVENTS_PREFIXED)):
            return
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        name = attributes.get("name")
        if name:
            code = attributes.get("exitCode") if action == "die" else None
            exit_code = int(code) if isinstance(code, str) and code.isdigit() else None
            self._post(str(name), ContainerEvent(action, exit_code))

    def _post(self, container: str | None, event: ContainerEvent) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            self._loop.call_soon_threadsafe(self._dispatch, container, event)

    def _dispatch(self, container: str | None, event: ContainerEvent) -> None:
        """On the loop: call the container's subscribers (every subscriber if None)."""
        if container is None:
            targets = [s for subs in self._subscribers.values() for s in subs]
        else:
            targets = list(self._subscribers.get(container, ()))
        for subscriber in targets:
            subscriber(event)


def knock(url: str) -> None:
    """Fail fast, and cleanly, when a Unix socket engine is not there: the SDK leaks the socket
    of a refused connection (ResourceWarning), and says less about why."""
    if not url.startswith("unix://"):
        return
    path = url.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(KNOCK_TIMEOUT)
        try:
            sock.connect(path)
        except OSError as exc:
            raise EngineUnavailable(exc.strerror or str(exc)) from exc


def _port_spec(port: str) -> str | tuple[str, str]:
    number, _, proto = port.partition("/")
    return (number, proto) if proto and proto != "tcp" else number


def _bind_target(bind: str) -> str:
    parts = bind.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _sdk() -> Any:
    """The docker SDK, imported on first use: ~7 MiB that a node without docker watchers never
    loads (it pulls in requests and urllib3)."""
    import docker
    import docker.errors
    import docker.utils

    return docker


def _explain(exc: BaseException) -> str:
    """One line about an SDK error, without its chain of wrappers."""
    sdk = _sdk()
    if isinstance(exc, sdk.errors.APIError) and exc.explanation:
        return str(exc.explanation)
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]
