"""file: success when the file changed since the last check, failure when it is missing.

The first check of an existing file counts as a change, unless ``gather_initial_state`` is
set, in which case the first check only records what it sees. A relative ``path`` resolves
against the machine's directory.

With ``contents`` (Choria's managed file; ``owner``, ``group`` and ``mode`` then required, all
four may hold templates) the watcher keeps the file as rendered: each check writes it again
when it is missing, changed by someone else, of another mode or content, and a write is a
success; a file already as wanted is unchanged; a failure to render or write is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from steward.machine.source import Fields
from steward.templates import Template, TemplateError
from steward.watchers import managed_file
from steward.watchers.base import Outcome, Watcher, WatcherResult

TYPE = "file"

Fingerprint = tuple[int, int, int, int]  # device, inode, size, mtime_ns


@dataclass(frozen=True)
class FileProperties:
    path: str
    gather_initial_state: bool = False
    contents: Template | None = None  # a managed file: these four
    owner: Template | None = None
    group: Template | None = None
    mode: Template | None = None

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        path = fields.string("path", required=True)
        contents = fields.template("contents")
        managed = fields.has("contents")
        owner = fields.template("owner", required=managed)
        group = fields.template("group", required=managed)
        mode = fields.template("mode", required=managed)
        if mode is not None and mode.static:
            try:
                managed_file.parse_mode(mode.source)
            except ValueError as exc:
                fields.error("mode", str(exc))
        if not managed:
            for key in ("owner", "group", "mode"):
                if fields.has(key):
                    fields.error(key, "applies only with 'contents' (a managed file)")
        props = cls(
            path=path or "",
            gather_initial_state=fields.boolean("gather_initial_state", False),
            contents=contents,
            owner=owner,
            group=group,
            mode=mode,
        )
        fields.finish(" in file properties")
        return props


class FileWatcher(Watcher):
    TYPE = TYPE
    Properties = FileProperties
    default_interval = 5.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._previous: Fingerprint | None = None
        self._first = True
        self._mtime_ns: int | None = None  # a managed file's, as last written or checked

    @property
    def props(self) -> FileProperties:
        p = self.spec.properties
        assert isinstance(p, FileProperties)
        return p

    @property
    def path(self) -> Path:
        p = Path(self.props.path)
        return p if p.is_absolute() else self.machine.directory / p

    async def check(self) -> WatcherResult:
        if self.props.contents is not None:
            return await self._manage()
        import asyncio  # here: validate loads this module without an event loop

        path = self.path
        try:
            st = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            self._previous = None
            self._first = False
            return WatcherResult(
                Outcome.FAILURE, f"{path} is missing", payload={"path": str(path), "exists": False}
            )
        except OSError as exc:
            return WatcherResult(
                Outcome.ERROR,
                f"cannot stat {path}: {exc.strerror}",
                payload={"path": str(path), "exists": None},
            )
        now: Fingerprint = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        previous, self._previous = self._previous, now
        payload = {"path": str(path), "exists": True, "size": st.st_size, "mtime": st.st_mtime}
        if self._first and self.props.gather_initial_state:
            self._first = False
            return WatcherResult(Outcome.UNCHANGED, "initial state gathered", payload=payload)
        self._first = False
        if previous == now:
            return WatcherResult(Outcome.UNCHANGED, "unchanged", payload=payload)
        return WatcherResult(Outcome.SUCCESS, "changed", payload=payload)

    async def _manage(self) -> WatcherResult:
        props = self.props
        assert props.contents is not None and props.mode is not None
        path = self.path
        payload: dict[str, object] = {"path": str(path), "managed": True}
        facts, data = self.context.node.facts.current, self.machine.data_snapshot()
        try:
            wanted = managed_file.Wanted(
                content=props.contents.render(facts, data).encode(),
                mode=managed_file.parse_mode(props.mode.render(facts, data)),
                owner=props.owner.render(facts, data) if props.owner else "",
                group=props.group.render(facts, data) if props.group else "",
            )
        except (TemplateError, ValueError) as exc:
            return WatcherResult(Outcome.ERROR, f"cannot render {path}: {exc}", payload=payload)
        import asyncio

        try:
            done = await asyncio.to_thread(managed_file.ensure, path, wanted, self._mtime_ns)
        except (OSError, LookupError) as exc:
            return WatcherResult(Outcome.ERROR, f"cannot write {path}: {exc}", payload=payload)
        self._mtime_ns = done.mtime_ns
        payload.update(mode=f"{wanted.mode:04o}", size=len(wanted.content))
        if done.written:
            payload["reason"] = done.reason
            return WatcherResult(Outcome.SUCCESS, f"written ({done.reason})", payload=payload)
        return WatcherResult(Outcome.UNCHANGED, "as wanted", payload=payload)
