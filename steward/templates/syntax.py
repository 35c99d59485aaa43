"""The template text → a tree: Go ``text/template``'s lexical rules, the subset Choria uses.

Outside actions everything is text. An action is ``{{ pipeline }}``; ``{{-`` and ``-}}``
(the dash next to a space, tab or newline) trim the whitespace of the text before or after
it; ``{{/* … */}}`` is a comment. A pipeline is commands joined by ``|``, each command's value
passed as the last argument of the next. A command is a function name and its arguments, or
one operand: a string (``"…"`` with Go escapes, or a raw ```…```), a character (``'a'``), a
number (Go syntax: ``42``, ``-1.5e3``, ``0x1F``, ``1_000``), ``true``, ``false``, ``nil``,
``(pipeline)``, ``.`` or ``.Field.Sub``.

A hand-written recursive-descent parser rather than a grammar on lark: text and actions are
two lexical modes and the trim markers depend on the neighbouring whitespace, which a single
lexer grammar expresses badly; this is ~250 lines with exact columns, and costs no import.
Keywords (``if``, ``range``, ``with``, ``define`` …) and variables (``$x``) are refused with
their column: no Choria machine or document uses them in watcher properties.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from steward.templates.errors import TemplateError

LEFT, RIGHT = "{{", "}}"
SPACE = " \t\r\n"
KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+"
    r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)"
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE = re.compile(
    r"\\(?:[abfnrtv\\'\"]|x[0-9a-fA-F]{2}|[0-7]{3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


# the tree ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Literal:
    value: Any  # str, int, float, bool or None
    column: int


@dataclass(frozen=True)
class Dot:
    """``.`` or ``.A.B``: the data the template was given, and fields of it."""

    fields: tuple[str, ...]
    column: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Operand, ...]
    column: int
    piped: bool  # the previous command's value is passed as a last argument


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Call | Operand, ...]
    column: int


@dataclass(frozen=True)
class Fields:
    """``(pipeline).A.B``."""

    target: Pipeline
    fields: tuple[str, ...]
    column: int


Operand = Literal | Dot | Pipeline | Fields | Call


@dataclass(frozen=True)
class Action:
    pipeline: Pipeline
    column: int


Node = str | Action


@dataclass(frozen=True)
class Signature:
    """What the parser checks of a function: its arguments' kinds, what it returns, and (for
    ``lookup``) a check of a literal first argument that raises ValueError."""

    params: tuple[str, ...]  # "string", "list" or "any", per argument
    returns: str  # "string" or "any"
    check_literal: Callable[[str], None] | None = None


@dataclass
class _Token:
    kind: str  # string, char, number, ident, bool, nil, dot, field, pipe, lparen, rparen, end
    text: str
    start: int  # 0-based offset in the template text
    value: Any = None
    spaced: bool = False  # whitespace came before it


# parsing ------------------------------------------------------------------------------------
@dataclass
class Parsed:
    nodes: tuple[Node, ...]
    uses_dot: bool = False  # '.' or '.Field' appears: the template reads the data it is given


def parse(text: str, signatures: Mapping[str, Signature]) -> Parsed:
    """The nodes of ``text``; TemplateError (1-based column) for anything wrong."""
    nodes: list[Node] = []
    parsed = Parsed(())
    pos = 0
    trim_next = False
    while True:
        start = text.find(LEFT, pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if trim_next:
            chunk = chunk.lstrip(SPACE)
        if start >= 0 and text[start + 2 : start + 3] == "-" and _space(text, start + 3):
            chunk = chunk.rstrip(SPACE)
            inner = start + 4
        else:
            inner = start + 2
        if chunk:
            nodes.append(chunk)
        if start < 0:
            break
        rest = text[inner:].lstrip(SPACE) if inner > start + 2 else text[inner:]
        if rest.startswith("/*"):
            pos, trim_next = _comment(text, len(text) - len(rest), start)
            continue
        tokens, pos, trim_next = _lex_action(text, inner, start)
        action = _Parser(text, tokens, signatures, parsed).action(start)
        nodes.append(action)
    parsed.nodes = tuple(nodes)
    return parsed


def _space(text: str, at: int) -> bool:
    return at < len(text) and text[at] in SPACE


def _comment(text: str, at: int, start: int) -> tuple[int, bool]:
    end = text.find("*/", at + 2)
    if end < 0:
        raise TemplateError("unclosed comment", start + 1)
    after = end + 2
    if text.startswith(RIGHT, after):
        return after + 2, False
    stripped = len(text) - len(text[after:].lstrip(SPACE))
    if stripped > after and text.startswith("-" + RIGHT, stripped):
        return stripped + 3, True
    raise TemplateError("comment ends before closing delimiter", end + 1)


def _lex_action(text: str, pos: int, start: int) -> tuple[list[_Token], int, bool]:
    """The tokens of the action starting after ``{{`` at ``pos``; where the text resumes; and
    whether a ``-}}`` trims it."""
    tokens: list[_Token] = []
    spaced = False
    n = len(text)
    while True:
        if pos >= n:
            raise TemplateError("unclosed action: no }}", start + 1)
        ch = text[pos]
        if ch in SPACE:
            ws_end = pos
            while ws_end < n and text[ws_end] in SPACE:
                ws_end += 1
            if text.startswith("-" + RIGHT, ws_end):
                tokens.append(_Token("end", "", ws_end))
                return tokens, ws_end + 3, True
            pos, spaced = ws_end, True
            continue
        if text.startswith(RIGHT, pos):
            tokens.append(_Token("end", "", pos))
            return tokens, pos + 2, False
        token = _lex_token(text, pos)
        token.spaced = spaced
        tokens.append(token)
        pos += len(token.text)
        spaced = False


def _lex_token(text: str, pos: int) -> _Token:
    ch = text[pos]
    column = pos + 1
    if ch == '"':
        return _quoted(text, pos, '"', "string")
    if ch == "'":
        token = _quoted(text, pos, "'", "char")
        if len(token.value) != 1:
            raise TemplateError("a character constant holds exactly one character", column)
        token.value = ord(token.value)
        return token
    if ch == "`":
        end = text.find("`", pos + 1)
        if end < 0:
            raise TemplateError("unterminated raw string", column)
        return _Token("string", text[pos : end + 1], pos, text[pos + 1 : end])
    number = _NUMBER.match(text, pos)
    if number:
        end = number.end()
        if end < len(text) and (text[end].isalnum() or text[end] in "_."):
            raise TemplateError(f"bad number syntax: {text[pos : end + 1]!r}", column)
        return _Token("number", number.group(), pos, _number(number.group(), column))
    if ch == ".":
        ident = _IDENT.match(text, pos + 1)
        if ident:
            return _Token("field", "." + ident.group(), pos, ident.group())
        return _Token("dot", ".", pos)
    ident = _IDENT.match(text, pos)
    if ident:
        word = ident.group()
        if word in ("true", "false"):
            return _Token("bool", word, pos, word == "true")
        if word == "nil":
            return _Token("nil", word, pos)
        if word in KEYWORDS:
            raise TemplateError(
                f"{{{{ {word} }}}} is not supported: steward templates hold function calls "
                "and pipelines only",
                column,
            )
        return _Token("ident", word, pos, word)
    if ch == "$":
        raise TemplateError("variables ($name) are not supported in steward templates", column)
    simple = {"|": "pipe", "(": "lparen", ")": "rparen"}
    if ch in simple:
        return _Token(simple[ch], ch, pos)
    if ch in ":=,":
        raise TemplateError("variables (:=, =) are not supported in steward templates", column)
    raise TemplateError(f"unexpected {ch!r} in action", column)


def _quoted(text: str, pos: int, quote: str, kind: str) -> _Token:
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "\n":
            break
        if ch == quote:
            raw = text[pos : i + 1]
            return _Token(kind, raw, pos, _unescape(raw[1:-1], pos + 2))
        i += 1
    name = "quoted string" if kind == "string" else "character constant"
    raise TemplateError(f"unterminated {name}", pos + 1)


def _unescape(body: str, column: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] != "\\":
            out.append(body[i])
            i += 1
            continue
        m = _ESCAPE.match(body, i)
        if m is None:
            raise TemplateError(f"unknown escape sequence {body[i : i + 2]!r}", column + i)
        seq = m.group()
        if seq[1] in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[seq[1]])
        elif seq[1] in "xuU":
            out.append(chr(int(seq[2:], 16)))
        else:
            out.append(chr(int(seq[1:], 8)))
        i = m.end()
    return "".join(out)


def _number(text: str, column: int) -> int | float:
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    body = clean.lstrip("+-")
    try:
        if body[:2].lower() in ("0x", "0b", "0o"):
            return sign * int(body, 0)
        if re.fullmatch(r"0[0-7]+", body):
            return sign * int(body, 8)
        if re.fullmatch(r"\d+", body):
            return sign * int(body)
        return sign * float(body)
    except ValueError:
        raise TemplateError(f"bad number syntax: {text!r}", column) from None


class _Parser:
    def __init__(
        self, text: str, tokens: list[_Token], signatures: Mapping[str, Signature], parsed: Parsed
    ) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.signatures = signatures
        self.parsed = parsed

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def action(self, start: int) -> Action:
        if self.peek().kind == "end":
            raise TemplateError("missing value for command", start + 1)
        pipeline = self.pipeline()
        token = self.peek()
        if token.kind != "end":
            raise TemplateError(f"unexpected {token.text!r} in action", token.start + 1)
        return Action(pipeline, start + 1)

    def pipeline(self) -> Pipeline:
        first = self.peek()
        commands = [self.command(piped=False)]
        while self.peek().kind == "pipe":
            self.take()
            command = self.command(piped=True)
            if isinstance(command, Call):  # what the previous command passes it, if known
                params = self.signatures[command.name].params
                _check_argument(
                    command.name,
                    len(params),
                    commands[-1],
                    params[-1],
                    self.signatures,
                    command.column,
                )
            commands.append(command)
        return Pipeline(tuple(commands), first.start + 1)

    def command(self, *, piped: bool) -> Call | Operand:
        token = self.peek()
        operands: list[Operand | _Token] = []
        while self.peek().kind not in ("pipe", "rparen", "end"):
            operands.append(self.operand())
        if not operands:
            raise TemplateError("missing value for command", token.start + 1)
        head = operands[0]
        if isinstance(head, _Token):  # a function name
            args = tuple(self._argument(op) for op in operands[1:])
            return self._call(head, args, piped)
        if len(operands) > 1 or piped:
            raise TemplateError("can't give argument to non-function", token.start + 1)
        if isinstance(head, Literal) and head.value is None:
            raise TemplateError("nil is not a command", token.start + 1)
        return head

    def _argument(self, op: Operand | _Token) -> Operand:
        if isinstance(op, _Token):  # a function named as an argument: called with none
            return self._call(op, (), piped=False)
        return op

    def _call(self, name: _Token, args: tuple[Operand, ...], piped: bool) -> Call:
        column = name.start + 1
        signature = self.signatures.get(name.value)
        if signature is None:
            known = ", ".join(sorted(self.signatures))
            raise TemplateError(f"function {name.value!r} not defined (known: {known})", column)
        given = len(args) + (1 if piped else 0)
        if given != len(signature.params):
            raise TemplateError(
                f"wrong number of args for {name.value}: want {len(signature.params)} got {given}",
                column,
            )
        for i, (arg, param) in enumerate(zip(args, signature.params, strict=False)):
            _check_argument(name.value, i + 1, arg, param, self.signatures)
        if signature.check_literal and args and isinstance(args[0], Literal):
            try:
                signature.check_literal(args[0].value)
            except ValueError as exc:
                raise TemplateError(f"{name.value}: {exc}", args[0].column) from None
        return Call(name.value, args, column, piped)

    def operand(self) -> Operand | _Token:
        token = self.take()
        column = token.start + 1
        term: Operand
        if token.kind in ("string", "char", "number", "bool", "nil"):
            term = Literal(token.value, column)
        elif token.kind == "ident":
            return token  # a function name: the command makes it a call
        elif token.kind in ("dot", "field"):
            self.parsed.uses_dot = True
            names = [token.value] if token.kind == "field" else []
            while self.peek().kind == "field" and not self.peek().spaced:
                names.append(self.take().value)
            return Dot(tuple(names), column)
        elif token.kind == "lparen":
            inner = self.pipeline()
            close = self.take()
            if close.kind != "rparen":
                raise TemplateError("unclosed left paren", column)
            term = inner
        else:
            raise TemplateError(f"unexpected {token.text or 'end of action'!r}", column)
        names = []
        while self.peek().kind == "field" and not self.peek().spaced:
            names.append(self.take().value)
        if names:
            if not isinstance(term, Pipeline):
                raise TemplateError(f"unexpected {'.'.join(['', *names])!r} after a value", column)
            return Fields(term, tuple(names), column)
        return term


def _check_argument(
    function: str,
    index: int,
    arg: Call | Operand,
    param: str,
    signatures: Mapping[str, Signature],
    column: int = 0,
) -> None:
    """Refuse, at parse time, an argument whose type is already known to be wrong."""
    kind = static_kind(arg, signatures)
    if param == "any" or kind == "any" or param == kind:
        return
    raise TemplateError(
        f"{function}: argument {index} must be {_ARTICLE[param]}, not {_ARTICLE[kind]}",
        column or arg.column,
    )


_ARTICLE = {
    "string": "a string",
    "list": "a list",
    "number": "a number",
    "boolean": "a boolean",
    "nil": "nil",
}


def static_kind(node: Call | Operand, signatures: Mapping[str, Signature]) -> str:
    """What a node evaluates to, when the parser can tell: string, number, boolean, nil or
    any (known only when it runs)."""
    if isinstance(node, Literal):
        value = node.value
        if isinstance(value, str):
            return "string"
        if isinstance(value, bool):
            return "boolean"
        return "nil" if value is None else "number"
    if isinstance(node, Call):
        return signatures[node.name].returns
    if isinstance(node, Pipeline):
        return static_kind(node.commands[-1], signatures)
    return "any"
