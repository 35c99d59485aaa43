"""archive: keep ``target/creates`` installed from a verified tarball (Choria's archive watcher).

Each run first checks what is installed: ``creates`` exists and, with ``verify``, every file
its SHA256SUMS lists still has its sum (and the list has ``verify_checksum``): success, no
download. Otherwise (missing, no SHA256SUMS, or a file no longer verifies) it downloads
``source`` — an http(s) URL, or beyond Choria ``nats-object://<bucket>/<name>``, a JetStream
object store on the daemon's NATS connection — to a scratch file (at most ``max_size``
bytes, within ``timeout``), checks its sha256 against ``checksum``, unpacks it safely in a
thread, verifies it and swaps it in (``archive_unpack``): success. Any failure is an error
result (the fail transition) and the previous version stays in place, untouched.

``source``, ``checksum``, ``verify_checksum``, ``username``, ``password`` and ``governor``
may hold Choria template actions, rendered at each run. With ``governor`` the download and
install happen while holding a slot in that governor, as the exec watcher does. Without NATS
configured a ``nats-object`` source or a governor is an error result: "no NATS is
configured"; the machine still loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Self

from steward.errors import GovernorError, NatsUnavailable
from steward.governor.watched import GOVERNOR_TIMEOUT, read_governor_timeout, slot_for
from steward.machine.source import Fields
from steward.templates import Template, TemplateError
from steward.watchers.archive_fetch import FetchError, fetch, source_problem
from steward.watchers.archive_unpack import ArchiveError, Installed, Layout, install, installed
from steward.watchers.base import Outcome, Watcher, WatcherResult

TYPE = "archive"
MIN_TIMEOUT = 5.0  # seconds; Choria raises anything shorter (and the default, 0) to 5s
MAX_SIZE = 512 << 20  # bytes downloaded at most (steward's max_size; Choria has no cap)
UNPACK_FACTOR = 16  # an archive may unpack to at most this many times max_size


@dataclass(frozen=True)
class ArchiveProperties:
    source: Template
    checksum: Template
    target: str
    creates: str
    verify: str = ""
    verify_checksum: Template | None = None
    username: Template | None = None
    password: Template | None = None
    insecure: bool = False
    timeout: float = MIN_TIMEOUT
    governor: Template | None = None
    governor_timeout: float = GOVERNOR_TIMEOUT
    max_size: int = MAX_SIZE

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        source = fields.template("source", required=True)
        if source is not None and source.static:
            problem = source_problem(source.source)
            if problem is not None:
                fields.error("source", problem)
        creates = fields.string("creates", required=True) or ""
        if creates and (
            "/" in creates or creates in (".", "..") or PurePosixPath(creates).name != creates
        ):
            fields.error("creates", f"must be one directory name, not {creates!r}")
        verify = _optional_string(fields, "verify")
        if verify and (verify.startswith("/") or ".." in PurePosixPath(verify).parts):
            fields.error("verify", f"must be a path inside the archive, not {verify!r}")
        verify_checksum = _optional_template(fields, "verify_checksum")
        if verify and verify_checksum is None:
            fields.error("verify", "verify_checksum is required when verify is set")
        username = _optional_template(fields, "username")
        password = _optional_template(fields, "password")
        if username is not None and password is None:
            fields.error("username", "password is required when username is given")
        timeout = fields.duration("timeout", minimum=0)
        governor = _optional_template(fields, "governor")
        props = cls(
            source=source or Template(""),
            checksum=fields.template("checksum", required=True) or Template(""),
            target=fields.string("target", required=True) or "",
            creates=creates,
            verify=verify,
            verify_checksum=verify_checksum if verify else None,
            username=username,
            password=password,
            insecure=fields.boolean("insecure", False),
            timeout=max(timeout or 0.0, MIN_TIMEOUT),
            governor=governor,
            governor_timeout=read_governor_timeout(fields, governor),
            max_size=fields.integer("max_size", MAX_SIZE, minimum=1),
        )
        fields.finish(" in archive properties")
        return props


def _optional_string(fields: Fields, key: str) -> str:
    """A string that may be empty (Choria's managed machines render unset ones to "")."""
    return fields.string(key, non_empty=False) or ""


def _optional_template(fields: Fields, key: str) -> Template | None:
    text = _optional_string(fields, key)
    return fields.parse_template(text, fields.value_pos(key)) if text else None


@dataclass(frozen=True)
class Rendered:
    """One run's properties, templates rendered."""

    source: str
    checksum: str
    verify_checksum: str
    auth: tuple[str, str] | None
    governor: str


class ArchiveWatcher(Watcher):
    TYPE = TYPE
    Properties = ArchiveProperties

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._installing: asyncio.Future[None] | None = None  # an install thread still running

    @property
    def props(self) -> ArchiveProperties:
        p = self.spec.properties
        assert isinstance(p, ArchiveProperties)
        return p

    def _layout(self, verify_checksum: str) -> Layout:
        target = Path(self.props.target)
        if not target.is_absolute():
            target = self.machine.directory / target
        return Layout(target, self.props.creates, self.props.verify, verify_checksum)

    async def check(self) -> WatcherResult:
        props = self.props
        payload: dict[str, Any] = {
            "source": props.source.source,
            "creates": props.creates,
            "previous_outcome": self.last_result.payload.get("state") if self.last_result else None,
            "previous_run_time": self.last_duration,
        }
        try:
            rendered = self._render()
        except TemplateError as exc:
            return _error(payload, f"template: {exc.message}")
        payload["source"] = rendered.source
        if not rendered.source or not rendered.checksum:
            empty = "source" if not rendered.source else "checksum"
            return _error(payload, f"{empty} template resulted in an empty string")
        await self._wait_for_install()
        layout = self._layout(rendered.verify_checksum)
        state, why = await asyncio.to_thread(installed, layout)
        if state is Installed.VERIFIED:
            return _result(Outcome.SUCCESS, payload, "verified", why)
        if not rendered.governor:
            return await self._update(rendered, layout, payload)
        return await self._governed(rendered, layout, payload)

    def _render(self) -> Rendered:
        props = self.props
        facts, data = self.context.node.facts.current, self.machine.data_snapshot()

        def render(template: Template | None) -> str:
            return template.render(facts, data).strip() if template is not None else ""

        username = render(props.username)
        return Rendered(
            source=render(props.source),
            checksum=render(props.checksum),
            verify_checksum=render(props.verify_checksum),
            auth=(username, render(props.password)) if username else None,
            governor=render(props.governor),
        )

    async def _governed(
        self, rendered: Rendered, layout: Layout, payload: dict[str, Any]
    ) -> WatcherResult:
        payload["governor"] = rendered.governor
        try:
            async with slot_for(self, rendered.governor, self.props.governor_timeout) as slot:
                payload["governor_seq"] = slot.seq
                return await self._update(rendered, layout, payload)
        except (GovernorError, NatsUnavailable) as exc:
            return _error(payload, str(exc))

    async def _update(
        self, rendered: Rendered, layout: Layout, payload: dict[str, Any]
    ) -> WatcherResult:
        props = self.props
        async with self._scratch_file() as (path, file):
            try:
                async with asyncio.timeout(props.timeout):
                    got = await fetch(
                        rendered.source,
                        file,
                        max_size=props.max_size,
                        nats=self.context.nats,
                        auth=rendered.auth,
                        insecure=props.insecure,
                    )
            except TimeoutError:
                detail = f"download timed out after {props.timeout:g}s"
                if rendered.source.startswith("nats-object:") and not self.context.nats.connected:
                    detail += ": NATS is not connected"  # the next run waits for it again
                return _error(payload, detail)
            except (FetchError, NatsUnavailable) as exc:
                return _error(payload, str(exc))
            if got.sha256 != rendered.checksum.lower():
                return _error(
                    payload, f"checksum mismatch: got {got.sha256}, want {rendered.checksum}"
                )
            loop = asyncio.get_running_loop()
            limit = props.max_size * UNPACK_FACTOR
            self._installing = loop.run_in_executor(None, install, path, layout, limit)
            try:
                await asyncio.shield(self._installing)
            except ArchiveError as exc:
                return _error(payload, str(exc))
            except OSError as exc:
                return _error(payload, f"install failed: {exc}")
        detail = f"installed {layout.destination} from {rendered.source} ({got.size} bytes)"
        return _result(Outcome.SUCCESS, payload, "downloaded", detail)

    async def _wait_for_install(self) -> None:
        """An install a cancelled check left running in its thread finishes first: two
        never swap the same directory at once."""
        if self._installing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._installing)
            self._installing = None

    @contextlib.asynccontextmanager
    async def _scratch_file(self) -> AsyncIterator[tuple[Path, Any]]:
        fd, name = tempfile.mkstemp(
            prefix=f"steward-archive-{_safe(self.machine.name)}-", dir=self.context.scratch_dir
        )
        file = os.fdopen(fd, "wb")
        try:
            yield Path(name), file
        finally:
            file.close()
            _discard(Path(name))  # an install thread still reading keeps its fd


def _result(outcome: Outcome, payload: Mapping[str, Any], state: str, detail: str) -> WatcherResult:
    return WatcherResult(outcome, detail, payload={**payload, "state": state})


def _error(payload: Mapping[str, Any], detail: str) -> WatcherResult:
    return _result(Outcome.ERROR, payload, "error", detail)


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]
