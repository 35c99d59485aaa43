"""The node's facts file (Choria's ``plugin.yaml``): read at start and at every rescan.

The file holds one mapping, as JSON, or as YAML when its name ends in ``.yaml``/``.yml``
(Choria decides by the suffix too). It is read in a thread, and only when its inode, size or
mtime changed since the last read. A good read swaps the shared ``Facts`` (every watcher's next
run sees it); a missing or broken file is logged once per distinct error, shown by
``steward status``, and leaves the last good facts in place.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from steward.clock import Clock
from steward.errors import SpecError
from steward.machine.yamldoc import load_yaml
from steward.watchers.context import Facts

log = logging.getLogger("steward.facts")

MAX_FACTS_BYTES = 16 * 1024 * 1024


class FactsError(ValueError):
    """A facts file that cannot be read or does not hold a mapping."""


def read_facts(path: Path) -> dict[str, Any]:
    """The mapping in ``path`` as plain JSON values; FactsError says what is wrong (blocking)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FactsError(f"cannot read facts file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FACTS_BYTES:
        raise FactsError(f"facts file {path} is larger than {MAX_FACTS_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        if path.suffix in (".yaml", ".yml"):
            # YAML → the JSON it means (dates and other tags become strings, as in Choria)
            data = json.loads(json.dumps(load_yaml(text, str(path)), default=str))
        else:
            data = json.loads(text)
    except SpecError as exc:
        raise FactsError(f"invalid facts file: {exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FactsError(f"invalid facts file {path}: {exc}") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise FactsError(f"facts file {path} must hold a mapping, not {kind}")
    return data


class FactsFile:
    """Keeps ``facts`` in line with the file at ``path`` (None: no facts file, empty facts)."""

    def __init__(self, path: Path | None, facts: Facts, clock: Clock) -> None:
        self.path = path
        self.facts = facts
        self.clock = clock
        self.loaded_at: float | None = None
        self._seen: tuple[int, ...] | None = None  # inode, size, mtime, ctime of the last read

    async def refresh(self) -> None:
        """Read the file again if it changed; never raises."""
        if self.path is None:
            return
        try:
            facts = await asyncio.to_thread(self._read_if_changed)
        except FactsError as exc:
            if str(exc) != self.facts.error:
                log.error("%s; keeping the last good facts", exc, extra={"error": str(exc)})
            self.facts.error = str(exc)
            self._seen = None  # read again next time, even if it did not change
            return
        if facts is None:
            return
        self.facts.replace(facts)
        self.loaded_at = self.clock.time()
        log.info("facts loaded from %s: %d", self.path, len(facts), extra={"facts": len(facts)})

    def _read_if_changed(self) -> dict[str, Any] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError as exc:
            raise FactsError(f"cannot read facts file {self.path}: {exc.strerror or exc}") from None
        seen = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if seen == self._seen:
            return None
        facts = read_facts(self.path)
        self._seen = seen
        return facts

    def status(self) -> dict[str, Any]:
        return {
            "file": str(self.path) if self.path is not None else None,
            "count": len(self.facts.current),
            "loaded_at": self.loaded_at,
            "error": self.facts.error,
        }
