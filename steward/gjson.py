"""GJSON paths (the query syntax Choria's ``lookup`` and kv ``query`` use), the subset
Choria's machines use: ``a.b.c`` (dot-separated keys), ``a.1`` (an array index), ``a.#``
(an array's length), ``a.#.b`` (``b`` of every element), ``*`` and ``?`` wildcards in a key,
``\\`` escaping a ``.``, ``*``, ``?`` or ``\\`` in a key. Anything else (``#(...)`` queries,
``@`` modifiers, ``|`` pipes) is refused when the path is parsed, so a machine using it is
rejected at load with the reason rather than failing quietly at run time.

Written here, not taken from PyPI: the one Python GJSON package is GPL-3.0 (steward is
Apache-2.0 and ships its dependencies) and costs ~5 MiB at import.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_UNSUPPORTED = re.compile(r"#\(|@|\|")


class PathError(ValueError):
    """A path this subset cannot evaluate."""


@dataclass(frozen=True)
class _Part:
    text: str  # the key, unescaped
    wildcard: bool  # holds an unescaped * or ?
    pattern: str  # for fnmatch, when wildcard


@dataclass(frozen=True)
class Path:
    source: str
    parts: tuple[_Part, ...]

    @classmethod
    def parse(cls, source: str) -> Path:
        """The path in ``source``; PathError naming what is not supported."""
        if not source:
            raise PathError("empty path")
        if _UNSUPPORTED.search(source.replace("\\\\", "").replace("\\@", "").replace("\\|", "")):
            raise PathError(
                f"{source!r}: only keys, indexes, '#', wildcards and escapes are supported "
                "(no #(...) queries, @ modifiers or | pipes)"
            )
        parts: list[_Part] = []
        key: list[str] = []
        pattern: list[str] = []
        wildcard = False
        chars = iter(source)
        for ch in chars:
            if ch == "\\":
                nxt = next(chars, "")
                if not nxt:
                    raise PathError(f"{source!r}: ends with an escape")
                key.append(nxt)
                pattern.append(re.escape(nxt) if nxt in "*?[" else nxt)
            elif ch == ".":
                parts.append(_part(key, pattern, wildcard, source))
                key, pattern, wildcard = [], [], False
            else:
                key.append(ch)
                if ch in "*?":
                    wildcard = True
                    pattern.append(ch)
                elif ch == "[":
                    pattern.append("[[]")
                else:
                    pattern.append(ch)
        parts.append(_part(key, pattern, wildcard, source))
        return cls(source, tuple(parts))

    def get(self, document: Any) -> tuple[bool, Any]:
        """(found, value) of this path in ``document`` (JSON-like: dicts, lists, scalars)."""
        return _walk(document, self.parts)


def get(document: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of ``path`` in ``document``."""
    return Path.parse(path).get(document)


def _part(key: list[str], pattern: list[str], wildcard: bool, source: str) -> _Part:
    if not key:
        raise PathError(f"{source!r}: empty key (two dots, or a leading or trailing dot)")
    return _Part("".join(key), wildcard, "".join(pattern))


def _walk(value: Any, parts: Sequence[_Part]) -> tuple[bool, Any]:
    if not parts:
        return True, value
    part, rest = parts[0], parts[1:]
    if isinstance(value, Mapping):
        if part.wildcard:
            for k in value:
                if isinstance(k, str) and fnmatch.fnmatchcase(k, part.pattern):
                    return _walk(value[k], rest)
            return False, None
        if part.text in value:
            return _walk(value[part.text], rest)
        return False, None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if part.text == "#" and not part.wildcard:
            if not rest:
                return True, len(value)
            out = []
            for item in value:
                found, got = _walk(item, rest)
                if found:
                    out.append(got)
            return True, out
        if part.text.isdigit() and not part.wildcard:
            index = int(part.text)
            if index < len(value):
                return _walk(value[index], rest)
        return False, None
    return False, None
