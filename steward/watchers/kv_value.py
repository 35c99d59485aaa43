"""What a kv watcher makes of a key's value, and whether it changed: pure functions.

``decode`` turns the stored bytes into machine data as Choria does: text that looks like a JSON
object or array (after trimming whitespace) is decoded, anything else is kept as text. A
``query`` (a GJSON path) picks a part of a JSON value. ``judge`` compares a read with what the
watcher saw before, following Choria's rules (``kvwatcher/kv.go`` ``poll()``):

- the key is missing and was missing: nothing happened;
- the key is missing and had a value: it was deleted, a change;
- the value differs from the one seen: a change;
- the same value at a newer revision, with ``on_matching_update``, once a revision was seen
  in this run: a change;
- otherwise, with ``on_successful_get``, every successful read counts as a change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from steward.gjson import Path


class _Missing:
    """The key is absent (from the bucket, or from the machine's data)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class UnusableValue(ValueError):
    """A value the watcher cannot turn into machine data; its text says why, in one line."""


@dataclass(frozen=True)
class Read:
    """One successful read of the key: its decoded value and its revision (stream sequence)."""

    value: Any
    revision: int


@dataclass(frozen=True)
class Seen:
    """What the watcher knows: the value the machine holds (MISSING: none) and the revision of
    the last read (0: none yet in this run, or the key was deleted)."""

    value: Any = MISSING
    revision: int = 0


class Change(StrEnum):
    NONE = "unchanged"
    PUT = "changed"  # a new value
    DELETED = "deleted"  # the key went away
    MATCHING_UPDATE = "matching_update"  # the same value written again (on_matching_update)
    GET = "successful_get"  # the same value read again (on_successful_get)


def decode(raw: bytes, query: Path | None = None) -> Any:
    """The machine data for a stored value; ``UnusableValue`` when it cannot be made."""
    text = raw.decode("utf-8", errors="replace")
    trimmed = text.strip()
    looks_json = (trimmed.startswith("{") and trimmed.endswith("}")) or (
        trimmed.startswith("[") and trimmed.endswith("]")
    )
    if not looks_json:
        if query is not None:
            raise UnusableValue(
                f"query {query.source!r} needs a JSON object or array, but the value is text"
            )
        return text
    try:
        document = json.loads(trimmed, parse_constant=_no_constant)
    except ValueError as exc:
        raise UnusableValue(f"the value looks like JSON but does not parse: {exc}") from exc
    if query is None:
        return document
    found, value = query.get(document)
    if not found:
        raise UnusableValue(f"query {query.source!r} matches nothing in the value")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def judge(
    seen: Seen,
    read: Read | None,
    *,
    on_successful_get: bool = False,
    on_matching_update: bool = False,
) -> tuple[Change, Seen]:
    """What a read (None: the key is missing) means after ``seen``, and what is seen now."""
    if read is None:
        if seen.value is MISSING:
            return Change.NONE, seen
        return Change.DELETED, Seen()
    if seen.value is MISSING or not same(seen.value, read.value):
        return Change.PUT, Seen(read.value, read.revision)
    now = Seen(seen.value, read.revision)
    if on_matching_update and 0 < seen.revision < read.revision:
        return Change.MATCHING_UPDATE, now
    if on_successful_get:
        return Change.GET, now
    return Change.NONE, now


def same(a: Any, b: Any) -> bool:
    """Deep equality of JSON values, where ``true`` is not ``1`` (as Go's cmp.Equal sees them)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping | list | tuple) or isinstance(b, Mapping | list | tuple):
        return False
    return bool(a == b)
