"""What the events integration tests share: the daemon with NATS flags, NATS readers, checks.

- ``StewardDaemon``: the e2e harness's daemon (``python -m steward run`` driven through the
  CLI) with extra ``run`` flags (``--nats-server``, ``--nats-stream``, ``--node``) and its
  own ``steward.yaml``.
- ``NatsCollector``: a core NATS subscriber on its own thread and event loop, so a
  synchronous test can poll what it received while it drives the daemon.
- ``read_stream``: everything a JetStream stream holds for a subject, in stream order.
- ``check_event``: parse with the ``cloudevents`` SDK and check every documented field.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.formats.json import JSONFormat
from nats.aio.msg import Msg

from tests.support.daemon import Daemon, base_env, wait_until

PREFIX = "steward.events"
STREAM = "STEWARD_EVENTS"
DEADLINE = 30.0  # seconds an awaited condition may take on a busy 2-core box
LIFECYCLE_STEPS = {"loaded", "started", "resumed", "reloaded", "removed", "load_failed"}

# Two states, each left by a timer: ~20 transitions/s with no process spawned. ``halt``
# (manual) ends the toggling, so a test knows the last seq.
TOGGLE = """\
name: {name}
version: 1.0.0
initial_state: dark
transitions:
  - {{name: light, from: [dark], destination: lit}}
  - {{name: darken, from: [lit], destination: dark}}
  - {{name: halt, from: [dark, lit], destination: halted}}
watchers:
  - name: dark_timer
    type: timer
    state_match: [dark]
    fail_transition: light
    properties: {{timer: {period}}}
  - name: lit_timer
    type: timer
    state_match: [lit]
    fail_transition: darken
    properties: {{timer: {period}}}
"""


def toggle(name: str, period: str = "50ms") -> str:
    return TOGGLE.format(name=name, period=period)


def short_tmp_dir(prefix: str) -> Path:
    """A state dir under /tmp: a Unix socket path must stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class StewardDaemon(Daemon):
    """The harness daemon plus ``steward run`` flags of the test's choosing."""

    def __init__(
        self,
        machines_dir: Path,
        state_dir: Path,
        log_path: Path,
        env: Mapping[str, str],
        args: Iterable[str] = (),
    ) -> None:
        super().__init__(machines_dir, state_dir, log_path, env)
        self.args = list(args)

    @property
    def argv(self) -> list[str]:
        return [*super().argv, *self.args]

    def machine_seq(self, name: str) -> int:
        m = self.machine(name)
        assert m is not None, f"no machine {name}"
        return int(m["seq"])

    def delivered_all(self, status: Mapping[str, Any]) -> bool:
        """NATS connected and nothing left in the outbox."""
        events = status["events"]
        return bool(events["nats"] and events["nats"]["connected"]) and (
            events["outbox"]["events"] == 0
        )

    def log_records(self, level: str, contains: str) -> list[dict[str, Any]]:
        return [r for r in self.logs() if r.get("level") == level and contains in r.get("msg", "")]


def make_daemon(
    tmp_path: Path,
    machines_dir: Path,
    state_dir: Path,
    *,
    config: str = "",
    args: Iterable[str] = (),
) -> StewardDaemon:
    config_file = tmp_path / "steward.yaml"
    config_file.write_text(config)
    return StewardDaemon(
        machines_dir, state_dir, tmp_path / "daemon.log", base_env(config_file), args
    )


# receiving -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    subject: str
    body: bytes
    headers: dict[str, str]
    at: float  # wall clock when the test received it

    @classmethod
    def of(cls, msg: Msg) -> Received:
        return cls(msg.subject, msg.data, dict(msg.headers or {}), time.time())


class NatsCollector:
    """A core NATS subscription on its own thread, collecting every message it receives."""

    def __init__(self, url: str, subject: str) -> None:
        self.url = url
        self.subject = subject
        self.errors: list[str] = []
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="nats-collector", daemon=True)

    def start(self, timeout: float = DEADLINE) -> NatsCollector:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError(f"no subscription on {self.url} within {timeout:g}s")
        if self._failure is not None:
            raise AssertionError(f"cannot subscribe on {self.url}: {self._failure!r}")
        return self

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def wait_for(
        self, predicate: Callable[[list[Received]], object], what: str, timeout: float = DEADLINE
    ) -> list[Received]:
        def check() -> list[Received] | None:
            got = self.received()
            return got if predicate(got) else None

        def describe() -> str:
            return f"received {len(self.received())} messages; client errors: {self.errors[-3:]}"

        return wait_until(check, timeout, what, describe)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by start(); a thread must not raise
            self._failure = exc
            self._ready.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await nats.connect(
            self.url,
            name="steward-tests collector",
            connect_timeout=5,
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
            error_cb=self._on_error,
            disconnected_cb=self._on_event,
            reconnected_cb=self._on_event,
            closed_cb=self._on_event,
        )
        try:

            async def on_msg(msg: Msg) -> None:
                with self._lock:
                    self._received.append(Received.of(msg))

            await nc.subscribe(self.subject, cb=on_msg)
            await nc.flush()
            self._ready.set()
            await self._stop.wait()
        finally:
            await nc.close()

    async def _on_error(self, exc: Exception) -> None:
        self.errors.append(f"{type(exc).__name__}: {exc}")

    async def _on_event(self) -> None:
        pass


async def _ignore_error(exc: Exception) -> None:
    pass


def read_stream(url: str, stream: str = STREAM, subject: str = ">") -> list[Received]:
    """Every message ``stream`` holds on ``subject``, in stream order (an ordered consumer)."""
    return asyncio.run(_read_stream(url, stream, subject))


async def _read_stream(url: str, stream: str, subject: str) -> list[Received]:
    nc = await nats.connect(
        url, name="steward-tests reader", allow_reconnect=False, error_cb=_ignore_error
    )
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream, subjects_filter=subject)
        total = sum((info.state.subjects or {}).values())
        out: list[Received] = []
        if total == 0:
            return out
        sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
        deadline = time.monotonic() + DEADLINE
        while len(out) < total:
            msg = await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))
            out.append(Received.of(msg))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


def add_stream(url: str, name: str, subjects: list[str]) -> None:
    asyncio.run(_manage(url, lambda js: js.add_stream(name=name, subjects=subjects)))


def delete_stream(url: str, name: str) -> None:
    asyncio.run(_manage(url, lambda js: js.delete_stream(name)))


async def _manage(url: str, action: Callable[[Any], Awaitable[object]]) -> None:
    nc = await nats.connect(
        url, name="steward-tests admin", allow_reconnect=False, error_cb=_ignore_error
    )
    try:
        await action(nc.jetstream())
    finally:
        await nc.close()


# checking --------------------------------------------------------------------------------------
_JSON = JSONFormat()
_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def token(text: str) -> str:
    return _TOKEN.sub("_", text) or "_"


def parse(body: bytes) -> BaseCloudEvent:
    """The CloudEvent in ``body``, read by the SDK (raises if it is not one)."""
    return _JSON.read(None, body)


def _iso(text: Any) -> datetime:
    assert isinstance(text, str), f"timestamp must be an ISO string, got {text!r}"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_event(msg: Received, node: str, prefix: str = PREFIX) -> BaseCloudEvent:
    """Parse with the SDK; check attributes, ``data`` and NATS subject as DESIGN.md documents."""
    event = parse(msg.body)
    ctype, data = event.get_type(), event.get_data()
    where = f"{msg.subject}: {msg.body[:300]!r}"
    assert event.get_specversion() == "1.0", where
    assert event.get_id(), where
    assert msg.headers.get("Nats-Msg-Id") == event.get_id(), where
    assert event.get_source() == f"steward://{node}", where
    assert event.get_datacontenttype() == "application/json", where
    when = event.get_time()
    assert when is not None and when.tzinfo is not None, where
    assert isinstance(data, dict), where
    machine = event.get_subject()
    assert machine and data["machine"] == machine, where
    assert data["node"] == node, where
    assert "machine_version" in data and "instance" in data, where
    assert abs((_iso(data["timestamp"]) - when).total_seconds()) < 0.001, where
    base = f"{prefix}.{token(node)}.{token(machine)}"
    if ctype == "io.steward.machine.v1.transition":
        assert msg.subject == f"{base}.transition", where
        for key in ("transition", "from_state", "to_state"):
            assert isinstance(data[key], str) and data[key], where
        assert isinstance(data["seq"], int) and data["seq"] >= 1, where
        assert data["machine_version"] and data["instance"], where
    elif ctype == "io.steward.machine.v1.lifecycle":
        assert msg.subject == f"{base}.lifecycle", where
        assert data["step"] in LIFECYCLE_STEPS, where
    else:
        found = re.fullmatch(r"io\.steward\.machine\.watcher\.([a-z_]+)\.v1\.state", ctype)
        assert found, f"unexpected type {ctype}: {where}"
        assert data["watcher_type"] == found.group(1), where
        assert msg.subject == f"{base}.watcher.{token(data['watcher'])}", where
        assert data["outcome"] in ("success", "failure", "error"), where
        assert isinstance(data["machine_state"], str), where
        assert isinstance(data["state"], dict), where
    return event


def data_of(event: BaseCloudEvent) -> dict[str, Any]:
    data = event.get_data()
    assert isinstance(data, dict), f"data is not a JSON object: {data!r}"
    return data


def transitions(events: Iterable[BaseCloudEvent], machine: str) -> list[dict[str, Any]]:
    """The ``data`` of each transition event of ``machine``, in the order given."""
    out = []
    for e in events:
        data = e.get_data()
        if e.get_type().endswith(".transition") and e.get_subject() == machine:
            assert isinstance(data, dict)
            out.append(data)
    return out


def seqs_of(messages: Iterable[Received], machine: str, node: str) -> list[int]:
    """The transition ``seq`` of every message for ``machine``, each checked, in order."""
    return [d["seq"] for d in transitions((check_event(m, node) for m in messages), machine)]


def describe_gaps(seqs: list[int]) -> str:
    """Where a list of seqs departs from 1..N: for assertion messages."""
    dupes = sorted(s for s, n in Counter(seqs).items() if n > 1)
    missing = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))
    disorder = [(a, b) for a, b in itertools.pairwise(seqs) if b <= a]
    return (
        f"{len(seqs)} seqs, first {seqs[:3]}, last {seqs[-3:]}; missing {missing[:20]}"
        f" ({len(missing)}); duplicates {dupes[:20]}; out of order {disorder[:10]}"
    )
