"""Why a machine moved: the cause of each transition, and the record a machine keeps of them.

A ``Cause`` says who fired a transition: a watcher (with the result that fired it: outcome,
detail and the type's own payload — an exec's exit code and output head, a probe's detail,
the expression, the KV revision…), a person through the API, or another machine through
``subscribe``. Its ``text`` is the short form events and logs have always carried
(``watcher NAME``, ``manual``, ``subscribe M.T``); ``as_dict`` is what history keeps.

Everything a cause holds is bounded (``MAX_TEXT`` characters per string, ``MAX_ITEMS`` items
per list or mapping), so a chatty command cannot make history or the fleet KV entry large.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# steward.yaml's history.keep (in steward.settings, which the config reads): exported as before
from steward.settings import DEFAULT_HISTORY_KEEP as DEFAULT_HISTORY_KEEP

if TYPE_CHECKING:
    from steward.machine.spec import WatcherSpec
    from steward.watchers.base import WatcherResult

MAX_TEXT = 256  # characters kept of any string in a cause (an output head, a detail)
MAX_ITEMS = 16  # items kept of any list or mapping in a cause
MAX_DEPTH = 3


@dataclass(frozen=True, slots=True)
class Cause:
    kind: str  # "watcher" | "manual" | "subscribe"
    text: str  # the short form carried by events and logs
    watcher: str | None = None
    watcher_type: str | None = None
    outcome: str | None = None
    detail: str = ""
    result: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def manual(cls, text: str = "manual") -> Cause:
        return cls("manual", text)

    @classmethod
    def subscribed(cls, machine: str, transition: str) -> Cause:
        return cls("subscribe", f"subscribe {machine}.{transition}")

    @classmethod
    def from_watcher(cls, spec: WatcherSpec, result: WatcherResult) -> Cause:
        return cls(
            "watcher",
            f"watcher {spec.name}",
            watcher=spec.name,
            watcher_type=spec.type,
            outcome=result.outcome.value,
            detail=_bounded(result.detail, 0),
            result=_bounded(dict(result.payload), 0),
        )

    @classmethod
    def of(cls, value: str | Cause) -> Cause:
        """A cause, or the short text of one (``manual``, ``subscribe M.T``…)."""
        if isinstance(value, Cause):
            return value
        kind = "subscribe" if value.startswith("subscribe ") else "manual"
        return cls(kind, value)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "text": self.text}
        if self.watcher is not None:
            out["watcher"] = self.watcher
            out["watcher_type"] = self.watcher_type
            out["outcome"] = self.outcome
            out["detail"] = self.detail
            out["result"] = dict(self.result)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Cause:
        return cls(
            str(raw.get("kind", "manual")),
            str(raw.get("text", "")),
            watcher=raw.get("watcher"),
            watcher_type=raw.get("watcher_type"),
            outcome=raw.get("outcome"),
            detail=str(raw.get("detail", "")),
            result=dict(raw.get("result") or {}),
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One committed transition as a machine's history keeps it."""

    seq: int
    at: float
    transition: str
    from_state: str
    to_state: str
    version: str
    cause: Cause

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "transition": self.transition,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "version": self.version,
            "cause": self.cause.as_dict(),
        }


def _bounded(value: Any, depth: int) -> Any:
    """``value`` made JSON-safe and small: strings cut, collections capped, depth limited."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= MAX_DEPTH:
        return _bounded(repr(value), depth)
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_ITEMS]
        return {str(k): _bounded(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [_bounded(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
    return _bounded(str(value), depth)
