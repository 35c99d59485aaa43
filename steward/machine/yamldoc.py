"""YAML 1.2 documents with the line and column of every key, value and item.

``load_yaml`` gives what ruamel.yaml's round-trip loader gives (YAML 1.2: ``on``/``off``/``yes``
stay strings; ``CommentedMap``/``CommentedSeq`` with ``.lc`` positions), by the fastest path
that gives it exactly:

1. a plain document (mappings with string keys, lists, scalars without tags or anchors: what
   machine files are) goes from libyaml's C scanner and parser (ruamel.yaml.clib) through
   ``_Builder`` straight into containers, with ruamel's resolver and constructor for the scalars
   that are not strings: ~10x faster than the pure loader, which is what lets 10,000 machines
   load in seconds.
2. anything else (anchors and aliases, tags, merge keys, duplicate or non-string keys, a
   ``%`` directive, a document over the limits or one libyaml refuses) goes to ruamel's
   pure-Python loader with ``BoundedComposer``: its values, errors and positions are the
   reference the docs and tests show. (ruamel's composer on the C parser is not a middle way:
   it builds explicitly tagged scalars differently.)

``_Builder`` keeps the same limits as ``BoundedComposer`` by handing a document over them to
the pure loader. tests/unit/test_yaml_fast.py checks that both paths agree on the shipped and
conformance machines and on fuzzed files.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, Format, LineCol
from ruamel.yaml.compat import ordereddict
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from steward.errors import Problem, SpecError

try:  # libyaml's scanner and parser, built for ruamel.yaml (optional: the pure loader is exact)
    from _ruamel_yaml import CParser
except ImportError:  # pragma: no cover - only where the wheel is missing
    CParser = None

MAX_DOCUMENT_BYTES = 1 << 20
# limits a hostile document cannot get past (see docs/reliability.md)
MAX_DEPTH = 50  # nesting of lists and mappings, aliases expanded
MAX_NODES = 50_000  # values in a document, each alias counted at its full expanded size
MAX_INTEGER_CHARS = 100  # longer integer literals are rejected before Python converts them
INT_TAG = "tag:yaml.org,2002:int"
STR_TAG = "tag:yaml.org,2002:str"
# the plain scalars _Builder has ruamel's constructor build (other tags: ruamel does it all)
SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "timestamp")
)
DIRECTIVE = re.compile(r"^%", re.MULTILINE)  # %YAML / %TAG: the pure loader honours them


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML 1.2 document; syntax errors become a SpecError with the position."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise SpecError(
            [Problem(file, 0, 0, "", f"file is larger than {MAX_DOCUMENT_BYTES} bytes")]
        )
    if CParser is not None and not DIRECTIVE.search(text):
        try:
            return _Builder(text).load()
        except Exception:
            pass  # not plain, or libyaml refused it: the pure loader decides and words why
    return _load_pure(text, file)


class BoundedComposer(Composer):
    """ruamel's composer, refusing what would make loading or validating unbounded.

    Nesting deeper than MAX_DEPTH, more than MAX_NODES values (an alias counts as the whole
    value it names, so a "billion laughs" document stops at the budget instead of growing
    exponentially), a recursive alias, and integer literals longer than MAX_INTEGER_CHARS
    (Python refuses to convert or print them) all become a YAML error at their position.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader=loader)
        self._depth = 0
        self._nodes = 0
        self._shape: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, depth)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                if isinstance(target, SequenceNode | MappingNode) and target.end_mark is None:
                    self._refuse(f"recursive alias *{event.anchor}", event)
                size, depth = self._measure(target)
                self._count(size, event)
                if self._depth + depth > MAX_DEPTH:
                    self._refuse(f"alias *{event.anchor} nests deeper than {MAX_DEPTH}", event)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels", event)
        self._count(1, event)
        node = super().compose_node(parent, index)
        self._depth -= 1
        return node

    def compose_scalar_node(self, anchor: Any) -> Any:
        node = super().compose_scalar_node(anchor)
        if str(node.tag) == INT_TAG and len(node.value) > MAX_INTEGER_CHARS:
            self._refuse(f"integer longer than {MAX_INTEGER_CHARS} characters", node)
        return node

    def _count(self, nodes: int, where: Any) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            self._refuse(f"more than {MAX_NODES} values (aliases count at full size)", where)

    def _measure(self, node: Node) -> tuple[int, int]:
        """Size and depth of a complete node with aliases expanded (bounded by MAX_DEPTH)."""
        known = self._shape.get(id(node))
        if known is not None:
            return known
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        shapes = [self._measure(c) for c in children if not isinstance(c, ScalarNode)]
        size = 1 + len(children) - len(shapes) + sum(s for s, _ in shapes)
        shape = self._shape[id(node)] = (size, 1 + max((d for _, d in shapes), default=1))
        return shape

    @staticmethod
    def _refuse(message: str, where: Any) -> None:
        raise ComposerError(None, None, message, where.start_mark)


class _Unsupported(Exception):
    """The document uses something ``_Builder`` leaves to ruamel's composer and constructor."""


class _Builder:
    """Containers with positions straight from libyaml's events, for plain documents.

    What it builds is what ruamel's round-trip constructor builds from the same events; it
    raises ``_Unsupported`` for anything whose construction it does not repeat.
    """

    def __init__(self, text: str) -> None:
        self._parser = CParser(text)
        self._nodes = 0

    def load(self) -> Any:
        try:
            get = self._parser.get_event
            if not isinstance(get(), StreamStartEvent):
                raise _Unsupported
            start = get()
            if not isinstance(start, DocumentStartEvent) or start.version or start.tags:
                raise _Unsupported  # an empty stream, or directives
            root = self._value(get(), 0)
            if not isinstance(get(), DocumentEndEvent) or not isinstance(get(), StreamEndEvent):
                raise _Unsupported  # a second document: the reference loader refuses it
            return root
        finally:
            self._parser.dispose()

    def _value(self, event: Any, depth: int) -> Any:
        self._nodes += 1
        if self._nodes > MAX_NODES or depth >= MAX_DEPTH or event.anchor is not None:
            raise _Unsupported
        cls = type(event)
        if cls is ScalarEvent:
            return self._scalar(event)
        if cls is MappingStartEvent:
            return self._mapping(event, depth + 1)
        if cls is SequenceStartEvent:
            return self._sequence(event, depth + 1)
        raise _Unsupported  # an alias

    def _scalar(self, event: ScalarEvent) -> Any:
        style = event.style
        if event.ctag is not None:  # (``tag`` is a property that makes a string of it)
            raise _Unsupported
        if style == "|":
            return LiteralScalarString(event.value)
        if style == ">":
            return FoldedScalarString(event.value)
        if not event.implicit[0]:  # quoted: a string
            return event.value
        tag = _resolve(event.value)
        if tag == STR_TAG:
            return event.value
        if tag not in SCALAR_TAGS or (tag == INT_TAG and len(event.value) > MAX_INTEGER_CHARS):
            raise _Unsupported
        return _construct(tag, event.value, style)

    # The containers are filled the way ruamel's constructor leaves them (own keys in ``_ok``,
    # positions in ``lc``, the flow style in ``fa``) through their base types' methods: the
    # CommentedMap/CommentedSeq overrides (merge-key and comment bookkeeping, which a plain
    # document has none of) cost more than the parse itself.
    def _mapping(self, event: MappingStartEvent, depth: int) -> CommentedMap:
        if event.ctag is not None:
            raise _Unsupported
        data = CommentedMap()
        own = data._ok
        where: dict[Any, list[int]] = {}
        get = self._parser.get_event
        while True:
            key_event = get()
            if type(key_event) is not ScalarEvent:
                if type(key_event) is MappingEndEvent:
                    break
                raise _Unsupported  # a complex key, or an alias as a key
            key = self._value(key_event, depth)
            if type(key) is not str or key == "<<" or key in where:
                raise _Unsupported  # non-string, merge or duplicate keys
            value_event = get()
            value = self._value(value_event, depth)
            kmark, vmark = key_event.start_mark, value_event.start_mark
            where[key] = [kmark.line, kmark.column, vmark.line, vmark.column]
            _MAP_SET(data, key, value)
            own.add(key)
        _place(data, event.start_mark, where)
        if where:
            _set_style(data, event.flow_style)
        return data

    def _sequence(self, event: SequenceStartEvent, depth: int) -> CommentedSeq:
        if event.ctag is not None:
            raise _Unsupported
        data = CommentedSeq()
        where: dict[Any, list[int]] = {}
        get = self._parser.get_event
        while True:
            item_event = get()
            if type(item_event) is SequenceEndEvent:
                break
            mark = item_event.start_mark
            where[len(data)] = [mark.line, mark.column]
            _SEQ_APPEND(data, self._value(item_event, depth))
        _place(data, event.start_mark, where)
        if where:
            _set_style(data, event.flow_style)
        return data


_MAP_SET = ordereddict.__setitem__
_SEQ_APPEND = list.append


def _place(data: CommentedMap | CommentedSeq, mark: Any, where: dict[Any, list[int]]) -> None:
    """The container's position, and its keys' or items' (what ``lc`` answers)."""
    lc = LineCol()
    lc.line, lc.col = mark.line, mark.column
    if where:
        lc.data = where
    setattr(data, LineCol.attrib, lc)


def _set_style(data: CommentedMap | CommentedSeq, flow_style: bool | None) -> None:
    """The flow style of a container that is not empty (as ruamel's constructor sets it)."""
    if flow_style is None:
        return
    style = Format()
    if flow_style:
        style.set_flow_style()
    else:
        style.set_block_style()
    setattr(data, Format.attrib, style)


class _ConstructorLoader:
    """What ruamel's round-trip constructor reads from its loader when given single scalars."""

    comment_handling = None
    allow_duplicate_keys = False
    _resolver = VersionedResolver(version=(1, 2))


_CONSTRUCTOR_LOADER = _ConstructorLoader()
_RESOLVER = _ConstructorLoader._resolver


@functools.lru_cache(maxsize=4096)
def _construct(tag: str, value: str, style: Any) -> Any:
    """A plain scalar that is not a string (an int, a bool, null…), as ruamel's round-trip
    constructor builds it. Remembered: these are immutable values, and building a
    constructor for each document cost more than parsing its text (10,000 machines with a
    ``splay_start: 0`` each)."""
    node = ScalarNode(tag, value, None, None, style=style)
    return RoundTripConstructor(loader=_CONSTRUCTOR_LOADER).construct_object(node)


@functools.lru_cache(maxsize=4096)
def _resolve(value: str) -> str:
    """The YAML 1.2 tag of a plain scalar (ruamel's resolver; the same value, the same tag)."""
    return str(_RESOLVER.resolve(ScalarNode, value, (True, False)))


def _load_pure(text: str, file: str) -> Any:
    yaml = YAML(typ="rt", pure=True)
    yaml.version = (1, 2)
    yaml.Composer = BoundedComposer
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            what = f"{exc.context}, {exc.problem}"
        raise SpecError([Problem(file, line, col, "", f"YAML: {what}")]) from exc
    except ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, len(before) - before.rfind("\n")
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        what = f"YAML: character #x{char:04x} is not allowed ({exc.reason})"
        raise SpecError([Problem(file, line, col, "", what)]) from exc
    except YAMLError as exc:
        raise SpecError([Problem(file, 0, 0, "", f"YAML: {exc}")]) from exc
    except RecursionError as exc:
        raise SpecError([Problem(file, 0, 0, "", "YAML: nesting too deep")]) from exc
