"""Nagios plugin output: the status text, the long output, and the performance data.

Per the Nagios plugin guidelines the first line is ``TEXT | PERFDATA``; later lines are long
output, and the first ``|`` in them starts more perfdata that runs to the end of the output::

    DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968
    / 15272 MB (77%);
    /boot 68 MB (69%); | /boot=68MB;88;93;0;98
    /home=69357MB;253404;253409;0;253414

Each perfdata item is ``'label'=value[UOM];[warn];[crit];[min];[max]``: the label is quoted
with single quotes when it holds spaces or ``=`` (a quote inside is doubled), ``warn`` and
``crit`` are threshold ranges (kept as text, e.g. ``10:``, ``~:20``, ``@5:10``), ``min`` and
``max`` are numbers. A malformed item is reported in ``errors`` and skipped; the parser never
raises. ``value`` ``U`` (undetermined, allowed by the guidelines) is skipped and reported
too, because a metric needs a number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# value then unit: a decimal number (a comma decimal mark is accepted), then letters or %
_VALUE_RE = re.compile(r"^([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)([A-Za-z%/]*)$")
_RANGE_RE = re.compile(
    r"^@?(?:~|[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)?(?::(?:[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)?)?$"
)


@dataclass(frozen=True)
class Perfdata:
    label: str
    value: float
    uom: str = ""
    warn: str | None = None
    crit: str | None = None
    min: float | None = None
    max: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The payload contract: label, value (float), uom, warn, crit, min, max."""
        return {
            "label": self.label,
            "value": self.value,
            "uom": self.uom,
            "warn": self.warn,
            "crit": self.crit,
            "min": self.min,
            "max": self.max,
        }


@dataclass(frozen=True)
class PluginOutput:
    text: str  # the first line, without its perfdata
    long_output: str  # the later lines, without their perfdata
    perfdata: tuple[Perfdata, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)


def parse_plugin_output(output: str) -> PluginOutput:
    """Split plugin output into status text, long output and parsed perfdata."""
    lines = output.replace("\r\n", "\n").strip("\n").split("\n") if output.strip() else []
    if not lines:
        return PluginOutput("", "")
    first, _, perf = lines[0].partition("|")
    perf_parts = [perf]
    long_lines: list[str] = []
    in_perf = False
    for line in lines[1:]:
        if in_perf:
            perf_parts.append(line)
            continue
        text, sep, more = line.partition("|")
        long_lines.append(text.rstrip() if sep else line)
        if sep:
            in_perf = True
            perf_parts.append(more)
    items, errors = parse_perfdata(" ".join(perf_parts))
    long_output = "\n".join(long_lines).strip("\n")
    return PluginOutput(first.strip(), long_output, tuple(items), tuple(errors))


def parse_perfdata(text: str) -> tuple[list[Perfdata], list[str]]:
    """Parse space-separated perfdata items; malformed ones are reported, not raised."""
    items: list[Perfdata] = []
    errors: list[str] = []
    for token, problem in _tokens(text):
        if problem:
            errors.append(problem)
            continue
        label, item_or_error = _item(token)
        if isinstance(item_or_error, Perfdata):
            items.append(item_or_error)
        else:
            errors.append(f"{label or token!r}: {item_or_error}")
    return items, errors


def _tokens(text: str) -> list[tuple[str, str]]:
    """Items separated by whitespace; a quoted label may hold spaces and ``''`` quotes.

    Returns (token, "") or ("", problem) for a token that cannot be delimited.
    """
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        if text[i] == "'":
            i += 1
            while True:
                close = text.find("'", i)
                if close < 0:
                    out.append(("", f"unterminated quoted label: {text[start:]!r}"))
                    return out
                if text.startswith("''", close):
                    i = close + 2
                    continue
                i = close + 1
                break
        while i < n and not text[i].isspace():
            i += 1
        out.append((text[start:i], ""))
    return out


def _item(token: str) -> tuple[str, Perfdata | str]:
    if token.startswith("'"):
        close = _closing_quote(token)
        label = token[1:close].replace("''", "'")
        rest = token[close + 1 :]
    else:
        label, eq, after = token.partition("=")
        rest = eq + after
    if not rest.startswith("="):
        return label, "expected 'label=value'"
    if not label:
        return label, "empty label"
    fields = rest[1:].split(";")
    while len(fields) > 5 and not fields[-1].strip():
        fields.pop()  # a trailing ';' after max
    if len(fields) > 5:
        return label, f"too many fields ({len(fields)}; at most value;warn;crit;min;max)"
    fields += [""] * (5 - len(fields))
    raw_value, warn, crit, raw_min, raw_max = (f.strip() for f in fields)
    if raw_value == "U":
        return label, "value is undetermined (U)"
    match = _VALUE_RE.match(raw_value)
    if not match:
        return label, f"value {raw_value!r} is not a number with an optional unit"
    value = _number(match.group(1))
    if value is None:
        return label, f"value {raw_value!r} is not a number"
    for name, rng in (("warn", warn), ("crit", crit)):
        if rng and not _RANGE_RE.match(rng):
            return label, f"{name} {rng!r} is not a threshold range"
    bounds: list[float | None] = []
    for name, raw in (("min", raw_min), ("max", raw_max)):
        bound = _number(_strip_unit(raw, match.group(2))) if raw else None
        if raw and bound is None:
            return label, f"{name} {raw!r} is not a number"
        bounds.append(bound)
    return label, Perfdata(
        label, value, match.group(2), warn or None, crit or None, bounds[0], bounds[1]
    )


def _closing_quote(token: str) -> int:
    i = 1
    while True:
        close = token.find("'", i)
        if close < 0:
            return len(token)
        if token.startswith("''", close):
            i = close + 2
            continue
        return close


def _strip_unit(raw: str, uom: str) -> str:
    """Some plugins repeat the unit on min/max (``0MB``); accept it when it is the same."""
    return raw[: -len(uom)] if uom and raw.endswith(uom) else raw


def _number(text: str) -> float | None:
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
