"""YAML 1.2 documents with positions, and a reader that validates them field by field.

``load_yaml`` (from ``yamldoc``) parses a document keeping every node's line and column.
``Fields`` reads one mapping: each accessor marks its key as known, checks the type, records a
``Problem`` with the exact position and field path when something is wrong, and ``finish()``
reports the unknown keys. Readers never raise for bad input; they collect every problem so a
user sees them all at once.

The config file is read through ``Fields`` too, and ``steward status`` reads it on every
call: what only machine files need (templates, shlex, decimal) is imported where it is used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq, LineCol

from steward.errors import Problem, Severity
from steward.machine.durations import parse_duration
from steward.machine.yamldoc import load_yaml

if TYPE_CHECKING:
    from steward.templates import Template

__all__ = [
    "Fields",
    "Position",
    "Problems",
    "load_yaml",
    "split_assignment",
    "split_command",
    "type_name",
]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a value sits: file, 1-based line and column, and its field path."""

    file: str
    line: int
    column: int
    path: str

    def problem(self, message: str, severity: Severity = Severity.ERROR) -> Problem:
        return Problem(self.file, self.line, self.column, self.path, message, severity)


@dataclass
class Problems:
    """The problems found so far in one document."""

    file: str
    items: list[Problem] = field(default_factory=list)

    def add(self, pos: Position, message: str, severity: Severity = Severity.ERROR) -> None:
        self.items.append(pos.problem(message, severity))

    @property
    def has_errors(self) -> bool:
        return any(p.severity is Severity.ERROR for p in self.items)


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def template_place(text: str, column: int) -> str:
    """Where ``column`` (1-based, across lines) of a template's text is, for a message."""
    before = text[: max(column - 1, 0)]
    if "\n" not in before:
        return f"column {column} of the template"
    line = before.count("\n") + 1
    return f"line {line}, column {column - before.rfind(chr(10)) - 1} of the template"


def split_command(command: str) -> tuple[str, ...]:
    """A command line split with shlex (no shell); ValueError says why it cannot be."""
    import shlex

    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise ValueError(f"cannot split command: {exc}") from None
    if not argv or not argv[0]:
        raise ValueError("must not be empty")
    return argv


def split_assignment(item: str) -> tuple[str, str]:
    """``KEY=VALUE`` as (KEY, VALUE); ValueError unless KEY is a valid variable name."""
    name, sep, value = item.partition("=")
    if not sep or not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
        raise ValueError(f"must be KEY=VALUE with a valid variable name, got {item!r}")
    return name, value


# Reading a loaded document goes through the base types (dict, list) and the ``lc`` data
# directly: CommentedMap's and CommentedSeq's own get, ``in``, iteration and ``lc`` are
# Python-level and were most of validation's time. They give the same answers for a loaded
# document (merged keys are in the dict itself).
_MISSING = object()
_get = dict.get
_has = dict.__contains__
_LINE_COL = LineCol.attrib
_COLUMNS = {"key": (0, 1), "value": (2, 3), "item": (0, 1)}


def _lc(container: Any, kind: str, key: Any) -> tuple[int, int]:
    """1-based line and column of a key, value or item (of the container if it has none)."""
    lc = getattr(container, _LINE_COL, None)
    if lc is None:
        return 0, 0
    try:
        line, col = _COLUMNS[kind]
        where = lc.data[key]
        return int(where[line]) + 1, int(where[col]) + 1
    except (KeyError, TypeError, IndexError):
        try:
            return int(lc.line) + 1, int(lc.col) + 1
        except TypeError:
            return 0, 0


def _items(value: list[Any]) -> Iterator[Any]:
    """A list's items (a CommentedSeq iterates in Python otherwise)."""
    return list.__iter__(value)


class Fields:
    """Typed, position-aware access to one YAML mapping."""

    def __init__(
        self,
        mapping: CommentedMap,
        path: str,
        pos: Position,
        problems: Problems,
        *,
        weak: bool = False,
    ):
        self._map = mapping
        self._path = path
        self.pos = pos
        self.problems = problems
        # Choria decodes watcher properties weakly (mapstructure's WeaklyTypedInput): "true"
        # is a bool, "10" an int, 10 a string "10", a lone value a one-item list
        self.weak = weak
        self._known: set[str] = set()

    @classmethod
    def document(cls, data: Any, problems: Problems) -> Fields | None:
        root = Position(problems.file, 1, 1, "")
        if not isinstance(data, CommentedMap):
            problems.add(root, f"the document must be a mapping, not {type_name(data)}")
            return None
        return cls(data, "", root, problems)

    # positions -----------------------------------------------------------------------------
    def child_path(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def key_pos(self, key: str) -> Position:
        line, col = _lc(self._map, "key", key)
        return Position(self.pos.file, line, col, self.child_path(key))

    def value_pos(self, key: str) -> Position:
        if _get(self._map, key) is None:
            return self.key_pos(key)
        line, col = _lc(self._map, "value", key)
        return Position(self.pos.file, line, col, self.child_path(key))

    def error(self, key: str, message: str, severity: Severity = Severity.ERROR) -> None:
        self.problems.add(self.value_pos(key), message, severity)

    def has(self, key: str) -> bool:
        return _has(self._map, key)

    # raw access ----------------------------------------------------------------------------
    def _take(self, key: str, required: bool) -> Any:
        self._known.add(key)
        value = _get(self._map, key, _MISSING)
        if value is _MISSING:
            if required:
                self.problems.add(self.pos, f"missing required field {self.child_path(key)!r}")
            return None
        return value

    def _typed(self, key: str, required: bool, kind: type, what: str) -> Any:
        value = self._take(key, required)
        if value is None:
            if required and _has(self._map, key):
                self.error(key, f"must be {what}, not null")
            return None
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        if self.weak:
            coerced = weakly(value, kind)
            if coerced is not None:
                return coerced
        self.error(key, f"must be {what}, not {type_name(value)}")
        return None

    # typed accessors -----------------------------------------------------------------------
    def string(self, key: str, *, required: bool = False, non_empty: bool = True) -> str | None:
        value = self._typed(key, required, str, "a string")
        if value is None:
            return None
        if non_empty and not value.strip():
            self.error(key, "must not be empty")
            return None
        return str(value)

    def template(self, key: str, *, required: bool = False) -> Template | None:
        """A string that may hold Choria template actions, parsed (not rendered) now."""
        text = self.string(key, required=required)
        if text is None:
            return None
        return self.parse_template(text, self.value_pos(key))

    def parse_template(self, text: str, pos: Position) -> Template | None:
        """``text`` (the value at ``pos``) as a template of a watcher property; a problem
        naming the column inside the template if it is not one."""
        from steward.templates import Template, TemplateError

        try:
            template = Template.parse(text)
        except TemplateError as exc:
            self.problems.add(
                pos, f"invalid template ({template_place(text, exc.column)}): {exc.message}"
            )
            return None
        if template.uses_dot:
            self.problems.add(
                pos,
                "invalid template: '.' holds nothing in a watcher property (Choria gives "
                'these templates no data); use lookup "facts.NAME" or lookup "data.NAME"',
            )
            return None
        return template

    def boolean(self, key: str, default: bool) -> bool:
        value = self._typed(key, False, bool, "true or false")
        return default if value is None else bool(value)

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._typed(key, False, int, "an integer")
        if value is None:
            return default
        if minimum is not None and value < minimum:
            self.error(key, f"must be at least {minimum}, got {value}")
            return default
        if maximum is not None and value > maximum:
            self.error(key, f"must be at most {maximum}, got {value}")
            return default
        return int(value)

    def duration(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        minimum_text: str = "",
    ) -> float | None:
        """A duration string (``10s``, ``1m30s``). Returns seconds, or None if absent/invalid."""
        value = self._take(key, required)
        if value is None:
            if _has(self._map, key):
                self.error(key, "must be a duration such as 10s, not null")
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, str | int | float)
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            self.error(key, f"must be a duration such as 10s, not {type_name(value)}")
            return None
        if not isinstance(value, str):
            if value != 0:
                self.error(key, f"duration {value} has no unit (use e.g. {value}s)")
                return None
            seconds = 0.0
        else:
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                self.error(key, str(exc))
                return None
        if minimum is not None and seconds < minimum:
            self.error(key, f"must be at least {minimum_text or f'{minimum}s'}, got {value}")
            return None
        if maximum is not None and seconds > maximum:
            self.error(key, f"must be at most {maximum}s, got {value}")
            return None
        return seconds

    def choice(self, key: str, allowed: Sequence[str]) -> str | None:
        """A string that must be one of ``allowed``; None if absent or invalid."""
        value = self.string(key)
        if value is not None and value not in allowed:
            self.error(key, f"must be one of {', '.join(allowed)}, got {value!r}")
            return None
        return value

    def command_line(self, key: str) -> tuple[str, tuple[str, ...]] | None:
        """A required command line, split with shlex (no shell): (text, argv)."""
        command = self.string(key, required=True)
        if command is None:
            return None
        argv = self._split(key, command)
        return None if argv is None else (command, argv)

    def command_template(self, key: str) -> tuple[Template, tuple[str, ...]] | None:
        """A required command line that may hold template actions: the template, and its
        argv split now when it has none (``()`` otherwise: it is split after each render)."""
        command = self.string(key, required=True)
        if command is None:
            return None
        template = self.parse_template(command, self.value_pos(key))
        if template is None:
            return None
        if not template.static:
            return template, ()
        argv = self._split(key, template.render({}, {}))
        return None if argv is None else (template, argv)

    def _split(self, key: str, command: str) -> tuple[str, ...] | None:
        try:
            argv = split_command(command)
        except ValueError as exc:
            self.error(key, str(exc))
            return None
        return argv

    def assignments(self, key: str) -> tuple[tuple[str, str], ...]:
        """A list of ``KEY=VALUE`` strings (environment variables), each checked."""
        out: list[tuple[str, str]] = []
        for item, pos in self.strings(key):
            try:
                out.append(split_assignment(item))
            except ValueError as exc:
                self.problems.add(pos, str(exc))
        return tuple(out)

    def assignment_templates(self, key: str) -> tuple[Template, ...]:
        """A list of ``KEY=VALUE`` strings that may hold template actions. A static entry is
        checked now, and so is the name of one whose actions are all after the ``=``; one
        that makes its name with an action is checked after each render."""
        out: list[Template] = []
        for item, pos in self.strings(key):
            template = self.parse_template(item, pos)
            if template is None:
                continue
            head = template.render({}, {}) if template.static else item.split("{{", 1)[0]
            if template.static or "=" in head:
                try:
                    split_assignment(head)
                except ValueError as exc:
                    self.problems.add(pos, str(exc))
                    continue
            out.append(template)
        return tuple(out)

    def strings(self, key: str, *, required: bool = False) -> list[tuple[str, Position]]:
        """A list of non-empty strings, each with its position."""
        value = self._typed(key, required, list, "a list of strings")
        if value is None:
            return []
        out: list[tuple[str, Position]] = []
        base = self.child_path(key)
        for i, item in enumerate(_items(value)):
            line, col = _lc(value, "item", i)
            if not line:  # a lone value read as a list: it is where the value is
                line, col = self.value_pos(key).line, self.value_pos(key).column
            pos = Position(self.pos.file, line, col, f"{base}[{i}]")
            if self.weak and not isinstance(item, str):
                item = weakly(item, str) or item
            if not isinstance(item, str) or isinstance(item, bool):
                self.problems.add(pos, f"must be a string, not {type_name(item)}")
            elif not item.strip():
                self.problems.add(pos, "must not be empty")
            else:
                out.append((str(item), pos))
        if required and not value:
            self.error(key, "must list at least one entry")
        return out

    def mapping(self, key: str, *, required: bool = False, weak: bool = False) -> Fields | None:
        """A nested mapping; ``weak``: it (and what is below it) is decoded weakly."""
        value = self._typed(key, required, dict, "a mapping")
        if value is None:
            return None
        if not isinstance(value, CommentedMap):  # weakly: an empty list is an empty mapping
            value = CommentedMap()
        return Fields(
            value, self.child_path(key), self.value_pos(key), self.problems, weak=weak or self.weak
        )

    def string_map(self, key: str) -> dict[str, str]:
        """A mapping of strings (annotations, headers), in order; a value that is not one is
        reported at its position and left out."""
        section = self.mapping(key)
        if section is None:
            return {}
        out: dict[str, str] = {}
        for name in list(section.keys()):
            value = section.string(name, non_empty=False)
            if value is not None:
                out[name] = value
        return out

    def mappings(self, key: str, *, required: bool = False) -> list[Fields]:
        """A list of mappings, each wrapped as Fields with path ``key[i]``."""
        value = self._typed(key, required, list, "a list")
        if value is None:
            return []
        out: list[Fields] = []
        base = self.child_path(key)
        for i, item in enumerate(_items(value)):
            line, col = _lc(value, "item", i)
            pos = Position(self.pos.file, line, col, f"{base}[{i}]")
            if not isinstance(item, CommentedMap):
                self.problems.add(pos, f"must be a mapping, not {type_name(item)}")
                continue
            out.append(Fields(item, f"{base}[{i}]", pos, self.problems, weak=self.weak))
        return out

    def raw(self, key: str) -> Any:
        """The untyped value (marks the key as known)."""
        return self._take(key, False)

    def keys(self) -> Iterator[str]:
        return (str(k) for k in self._map)

    def finish(self, hint: str = "") -> None:
        """Report every key no accessor asked for: a typo must not pass silently."""
        for key in self._map:
            if key in self._known:
                continue
            line, col = _lc(self._map, "key", key)
            name = str(key)
            pos = Position(self.pos.file, line, col, self.child_path(name))
            known = ", ".join(sorted(self._known))
            self.problems.add(pos, f"unknown field {name!r}{hint} (known: {known})")


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False", "")
_OCTAL = re.compile(r"^[+-]?0[0-7]+$")


def weakly(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` the way Choria's mapstructure decoding (WeaklyTypedInput) turns
    it into one, or None if it cannot: a bool from a number or ``strconv.ParseBool`` text, an
    int from a bool, a whole float or ``strconv.ParseInt`` text (base prefixes, ``017`` is
    octal), a string from a number or bool (``1``/``0``), a one-item list from a lone value,
    an empty mapping from an empty list."""
    if kind is bool:
        if isinstance(value, int | float):
            return value != 0
        if isinstance(value, str):
            return True if value in _TRUE else False if value in _FALSE else None
    elif kind is int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and math.isfinite(value):
            return int(value)  # Go truncates
        if isinstance(value, str):
            return _parse_int(value)
    elif kind is str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float) and math.isfinite(value):
            from decimal import Decimal  # here: ~0.3 MiB of RSS that only floats need

            return format(Decimal(repr(value)).normalize(), "f")  # Go's %v of a float64
    elif kind is list:
        if isinstance(value, str | int | float | bool):
            return CommentedSeq([value])
    elif kind is dict and isinstance(value, list) and not value:
        return CommentedMap()
    return None


def _parse_int(text: str) -> int | None:
    text = text.strip()
    if not text:
        return 0
    try:
        if _OCTAL.match(text):
            return int(text, 8)
        return int(text, 0)
    except ValueError:
        return None
