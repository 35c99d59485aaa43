"""The functions Choria gives its templates (go-choria ``internal/util.FuncMap`` plus the
watcher's ``lookup``), with their signatures for the parser and their Python bodies.

``lookup PATH DEFAULT`` reads a GJSON path (``steward.gjson``'s subset) over
``{"facts": <node facts>, "data": <machine data>}`` and returns DEFAULT when nothing is there.
``Title`` and ``Capitalize`` title-case every word (``golang.org/x/text/cases.Title``: the
rest of each word lower-cased); ``ToLower``, ``ToUpper``; ``StringsJoin`` joins a list with
", "; ``Base64Encode``, ``Base64Decode`` (standard alphabet, padded).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from steward import gjson
from steward.templates.syntax import Signature
from steward.templates.values import go_format

# a word as Unicode word breaking sees it, near enough: letters and digits, joined by
# apostrophes, periods and colons between them (o'neil, e.g) and by underscores
_WORD = re.compile(r"[^\W_]+(?:(?:['\u2019.:]|_+)[^\W_]+)*")


@dataclass(frozen=True)
class Scope:
    """What ``lookup`` reads."""

    document: Mapping[str, Any]  # {"facts": ..., "data": ...}


@dataclass(frozen=True)
class Function:
    signature: Signature
    body: Callable[[Scope, list[Any]], Any]


def _check_path(path: str) -> None:
    try:
        gjson.Path.parse(path)
    except gjson.PathError as exc:
        raise ValueError(str(exc)) from None


def _lookup(scope: Scope, args: list[Any]) -> Any:
    path, default = args
    try:
        found, value = gjson.Path.parse(path).get(scope.document)
    except gjson.PathError as exc:
        raise ValueError(str(exc)) from None
    return value if found else default


def _title(_: Scope, args: list[Any]) -> str:
    return _WORD.sub(lambda m: m.group()[:1].upper() + m.group()[1:].lower(), args[0])


def _join(_: Scope, args: list[Any]) -> str:
    items = args[0]
    return ", ".join(go_format(item) for item in items)


def _b64encode(_: Scope, args: list[Any]) -> str:
    return base64.b64encode(args[0].encode()).decode("ascii")


def _b64decode(_: Scope, args: list[Any]) -> str:
    try:
        raw = base64.b64decode(args[0].encode(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{args[0]!r} is not valid base64") from None
    return raw.decode("utf-8", errors="replace")


def _one(fn: Callable[[str], str]) -> Function:
    return Function(Signature(("string",), "string"), lambda _, args: fn(args[0]))


FUNCTIONS: Mapping[str, Function] = MappingProxyType(
    {
        "lookup": Function(Signature(("string", "any"), "any", _check_path), _lookup),
        "Title": Function(Signature(("string",), "string"), _title),
        "Capitalize": Function(Signature(("string",), "string"), _title),
        "ToLower": _one(str.lower),
        "ToUpper": _one(str.upper),
        "StringsJoin": Function(Signature(("list",), "string"), _join),
        "Base64Encode": Function(Signature(("string",), "string"), _b64encode),
        "Base64Decode": Function(Signature(("string",), "string"), _b64decode),
    }
)
SIGNATURES: Mapping[str, Signature] = MappingProxyType(
    {name: f.signature for name, f in FUNCTIONS.items()}
)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)
