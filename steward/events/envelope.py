"""An event ready to store and send: its id, NATS subject and structured CloudEvent bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    TRANSITION = "transition"
    WATCHER = "watcher"
    LIFECYCLE = "lifecycle"


class LifecycleStep(StrEnum):
    LOADED = "loaded"
    STARTED = "started"
    RESUMED = "resumed"
    RELOADED = "reloaded"
    REMOVED = "removed"
    LOAD_FAILED = "load_failed"
    RECORDING_RESUMED = "recording_resumed"  # the store works again; says what was not recorded


@dataclass(frozen=True, slots=True)  # 1,000 kept for `steward events`: ~40 KiB less
class Envelope:
    id: str  # the CloudEvent id; also Nats-Msg-Id, so JetStream dedupes retries
    kind: EventKind
    machine: str
    subject: str  # NATS subject
    body: bytes  # the CloudEvent, structured JSON


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject_token(text: str) -> str:
    """A NATS subject token: anything outside ``[A-Za-z0-9_-]`` becomes ``_``."""
    return _UNSAFE.sub("_", text) or "_"
