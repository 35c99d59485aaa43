"""The one duration parser: ``500ms``, ``10s``, ``1m30s``, ``1.5h``, ``2d``, ``1w``."""

from __future__ import annotations

import math
import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise ValueError with a message a user can act on."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    if s == "0":
        return 0.0
    pos = 0
    total = 0.0
    for match in _PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or pos == 0:
        if re.fullmatch(r"\d+(\.\d*)?", s):
            raise ValueError(f"duration {text!r} has no unit (use e.g. {s}s)")
        raise ValueError(
            f"invalid duration {text!r} (use a number and a unit: ms, s, m, h, d, w; e.g. 1m30s)"
        )
    if not math.isfinite(total):
        raise ValueError(f"duration {text!r} is too large")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: 1.5s, 2m5s, 3h0m, 2d4h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"
