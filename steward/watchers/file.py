"""file: success when the file changed since the last check, failure when it is missing.

The first check of an existing file counts as a change, unless ``gather_initial_state`` is
set, in which case the first check only records what it sees. A relative ``path`` resolves
against the machine's directory.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult

TYPE = "file"

Fingerprint = tuple[int, int, int, int]  # device, inode, size, mtime_ns


@dataclass(frozen=True)
class FileProperties:
    path: str
    gather_initial_state: bool = False

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        path = fields.string("path", required=True)
        props = cls(
            path=path or "", gather_initial_state=fields.boolean("gather_initial_state", False)
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
