"""Structured logs: one line per record, JSON (for machines) or key=value text (for people).

When stderr is the journal (systemd sets ``JOURNAL_STREAM`` to the ``device:inode`` of the
stream it connected), each line starts with its syslog priority, ``<3>`` … ``<7>``
(sd-daemon.h's ``SD_ERR`` … ``SD_DEBUG``): journald strips the prefix and stores it as
``PRIORITY``, so ``journalctl -p err`` finds steward's errors.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

# attributes of a LogRecord that are not user fields
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def _timestamp(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), f"{record.levelname:<7}", record.getMessage()]
        for k, v in _fields(record).items():
            text = str(v)
            parts.append(f"{k}={json.dumps(text) if (' ' in text or not text) else text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def syslog_priority(levelno: int) -> int:
    """sd-daemon.h's priorities: SD_ERR (3) for error and critical, SD_WARNING (4),
    SD_INFO (6), SD_DEBUG (7)."""
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalPrefix(logging.Formatter):
    """Another formatter's output with ``<N>`` before each line (journald reads every line of
    a stream as one entry: an exception's traceback keeps the record's priority)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).split("\n"))


def is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True when ``stream`` is the journal: ``JOURNAL_STREAM`` names its device and inode
    (a child that inherits the variable but writes elsewhere does not match)."""
    device, sep, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):  # no file descriptor, or not two numbers
        return False


def setup_logging(
    fmt: str,
    level: str,
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """``fmt``: json, text or auto (json unless stderr is a terminal). Lines carry their
    syslog priority when ``stream`` (stderr) is the journal."""
    stream = sys.stderr if stream is None else stream
    environ = os.environ if environ is None else environ
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    if is_journal(stream, environ):
        formatter = JournalPrefix(formatter)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
