"""The expr-lang subset Choria's expression watcher uses, compiled once at load.

Choria evaluates ``success_when`` / ``fail_when`` with expr-lang (Go). steward parses the same
syntax with a small lark grammar and evaluates the tree itself (nothing is handed to Python's
``eval``):

- literals: numbers, ``"strings"``/``'strings'`` (``\\n``, ``\\t``, ``\\"`` … escapes),
  raw ```strings```, ``true``, ``false``, ``nil``, ``[lists]``, ``{"maps": 1}``
- names the caller provides (the expression watcher: ``data``, ``facts``, ``identity``) and
  member access: ``data.x``, ``data["x"]``, ``list[0]``, ``data?.x`` (nil instead of an error)
- ``!``/``not``, ``-``; ``**``/``^``, ``*``, ``/``, ``%``, ``+``, ``-``; ``??`` (nil coalescing)
- ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``matches`` (a regular
  expression), ``contains``, ``startsWith``, ``endsWith``; ``&&``/``and``, ``||``/``or``;
  ``a ? b : c``
- functions: ``len``, ``abs``, ``int``, ``float``, ``string``, ``lower``, ``upper``, ``trim``,
  ``keys``, ``values``, and those the caller provides (``get_fact``)

An unknown name or function, a wrong number of arguments, a bad regular expression literal
and bad syntax are ``ExpressionError``s at parse time, with the column in the expression.
Evaluation follows expr-lang: a missing map key is ``nil``, ``&&``/``||`` need booleans,
comparing a number with a string is an error, ``/`` gives a float, numbers compare across
int and float. lark is imported on first use (about 35 ms, 4 MiB).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

Env = Mapping[str, Any]
Node = Callable[[Env], Any]

GRAMMAR = r"""
?start: cond
?cond: or_
     | or_ "?" cond ":" cond -> ternary
?or_: and_
    | or_ OR and_ -> logic
?and_: cmp
     | and_ AND cmp -> logic
?cmp: sum
    | cmp CMP sum -> compare
    | cmp NOT_IN sum -> compare
?sum: product
    | sum ADD product -> arith
?product: unary
        | product MUL unary -> arith
?unary: power
      | NOT unary -> negate
      | ADD unary -> sign
?power: coalesce
      | coalesce POW unary -> arith
?coalesce: postfix
         | coalesce "??" postfix -> coalesce
?postfix: atom
        | postfix "." NAME -> member
        | postfix OPT NAME -> member
        | postfix "[" cond "]" -> index
        | NAME "(" [args] ")" -> call
?atom: NUMBER -> number
     | STRING -> string
     | RAW -> raw
     | NAME -> name
     | "(" cond ")"
     | "[" [args] "]" -> array
     | "{" [pairs] "}" -> mapping
args: cond ("," cond)* [","]
pairs: pair ("," pair)* [","]
pair: (STRING | NAME) ":" cond

OR: "||" | "or"
AND: "&&" | "and"
NOT_IN.3: /not\s+in\b/
CMP: "==" | "!=" | "<=" | ">=" | "<" | ">" | "in" | "matches" | "contains"
   | "startsWith" | "endsWith"
ADD: "+" | "-"
MUL: "*" | "/" | "%"
POW: "**" | "^"
NOT.2: "!" | /not\b/
OPT: "?."
NUMBER: /\d[\d_]*(\.\d+)?([eE][-+]?\d+)?/
STRING: /"(\\.|[^"\\])*"/ | /'(\\.|[^'\\])*'/
RAW: /`[^`]*`/
NAME: /[A-Za-z_$][A-Za-z0-9_$]*/

%import common.WS
%ignore WS
"""

_KEYWORDS = {"true": True, "false": False, "nil": None}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f"}


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; ``column`` is 1-based (0: unknown)."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return f"{self.message} (column {self.column})" if self.column else self.message


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ExpressionError(f"invalid argument for len (type {_type(value)})")


def _string_function(name: str, fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    def call(value: Any) -> Any:
        if not isinstance(value, str):
            raise ExpressionError(f"{name}: expected a string, got {_type(value)}")
        return fn(value)

    return call


def _to_int(value: Any) -> int:
    if _is_number(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ExpressionError(f"int: cannot convert {_type(value)} {value!r}")


def _to_float(value: Any) -> float:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ExpressionError(f"float: cannot convert {_type(value)} {value!r}")


def _to_string(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _abs(value: Any) -> Any:
    if not _is_number(value):
        raise ExpressionError(f"abs: expected a number, got {_type(value)}")
    return abs(value)


def _mapping_function(name: str, fn: Callable[[Mapping[str, Any]], Any]) -> Callable[[Any], Any]:
    def call(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ExpressionError(f"{name}: expected a map, got {_type(value)}")
        return fn(value)

    return call


# name -> (function, number of arguments)
BUILTINS: Mapping[str, tuple[Callable[..., Any], int]] = {
    "len": (_len, 1),
    "abs": (_abs, 1),
    "int": (_to_int, 1),
    "float": (_to_float, 1),
    "string": (_to_string, 1),
    "lower": (_string_function("lower", str.lower), 1),
    "upper": (_string_function("upper", str.upper), 1),
    "trim": (_string_function("trim", str.strip), 1),
    "keys": (_mapping_function("keys", lambda m: list(m.keys())), 1),
    "values": (_mapping_function("values", lambda m: list(m.values())), 1),
}


@dataclass(frozen=True)
class Expression:
    """A compiled expression: ``evaluate(env)`` runs it over the names the caller provides."""

    source: str
    _run: Node

    @classmethod
    def parse(
        cls,
        text: str,
        names: frozenset[str],
        functions: Mapping[str, int] | None = None,
    ) -> Expression:
        """Compile ``text``. ``names`` are the variables ``evaluate`` will be given;
        ``functions`` maps each caller function (found in the env too) to its arity."""
        from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

        if not text.strip():
            raise ExpressionError("empty expression")
        try:
            tree = _parser().parse(text)
        except UnexpectedToken as exc:
            if exc.token.type == "$END":
                raise ExpressionError("unexpected end of expression", len(text) + 1) from None
            raise ExpressionError(f"unexpected {str(exc.token)!r}", exc.column or 0) from None
        except UnexpectedCharacters as exc:
            raise ExpressionError(
                f"unexpected character {text[exc.pos_in_stream or 0]!r}", exc.column
            ) from None
        except UnexpectedEOF:
            raise ExpressionError("unexpected end of expression", len(text) + 1) from None
        compiler = _Compiler(names, dict(functions or {}))
        return cls(text, compiler.compile(tree))

    def evaluate(self, env: Env) -> Any:
        """The value; ExpressionError when it cannot be computed."""
        try:
            return self._run(env)
        except ExpressionError:
            raise
        except RecursionError:
            raise ExpressionError("expression nests too deeply") from None

    def truth(self, env: Env) -> bool:
        """The value, which must be a boolean (as Choria's ``expr.AsBool()``)."""
        value = self.evaluate(env)
        if not isinstance(value, bool):
            raise ExpressionError(f"expected a boolean result, got {_type(value)}")
        return value


@functools.cache
def _parser() -> Lark:
    """The one LALR parser, built on first use (a pure function of the grammar)."""
    from lark import Lark

    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)


class _Compiler:
    """Turns the parse tree into nested closures, checking names and calls on the way."""

    def __init__(self, names: frozenset[str], functions: dict[str, int]) -> None:
        self.names = names
        self.functions = functions

    def compile(self, node: Tree[Token] | Token) -> Node:
        from lark import Token

        if isinstance(node, Token):
            raise ExpressionError(f"unexpected {str(node)!r}", node.column or 0)
        method = getattr(self, f"_{node.data}", None)
        if method is None:
            raise ExpressionError(f"unsupported syntax {node.data}", _column(node))
        compiled: Node = method(node, *node.children)
        return compiled

    # literals ------------------------------------------------------------------------------
    def _number(self, _: Tree[Token], token: Token) -> Node:
        text = str(token).replace("_", "")
        value: float | int = float(text) if any(c in text for c in ".eE") else int(text)
        return lambda env: value

    def _string(self, _: Tree[Token], token: Token) -> Node:
        value = _unquote(str(token))
        return lambda env: value

    def _raw(self, _: Tree[Token], token: Token) -> Node:
        value = str(token)[1:-1]
        return lambda env: value

    def _array(self, _: Tree[Token], args: Tree[Token] | None) -> Node:
        items = self._args(args)
        return lambda env: [item(env) for item in items]

    def _mapping(self, _: Tree[Token], pairs: Tree[Token] | None) -> Node:
        compiled: list[tuple[str, Node]] = []
        for pair in pairs.children if pairs is not None else []:
            if pair is None:
                continue
            assert not isinstance(pair, str)
            key, value = pair.children
            text = str(key)
            compiled.append((_unquote(text) if text[0] in "\"'" else text, self.compile(value)))
        return lambda env: {k: v(env) for k, v in compiled}

    def _args(self, args: Tree[Token] | None) -> list[Node]:
        if args is None:
            return []
        return [self.compile(child) for child in args.children if child is not None]

    # names and access ----------------------------------------------------------------------
    def _name(self, _: Tree[Token], token: Token) -> Node:
        name = str(token)
        if name in _KEYWORDS:
            value = _KEYWORDS[name]
            return lambda env: value
        if name in self.functions or name in BUILTINS:
            raise ExpressionError(f"{name} is a function: call it as {name}(…)", token.column or 0)
        if name not in self.names:
            known = ", ".join(sorted(self.names))
            raise ExpressionError(f"unknown name {name!r} (known: {known})", token.column or 0)
        return lambda env: env.get(name)

    def _member(self, _: Tree[Token], target: Any, *rest: Token) -> Node:
        optional = len(rest) == 2
        key = str(rest[-1])
        of = self.compile(target)
        return lambda env: _fetch(of(env), key, optional)

    def _index(self, _: Tree[Token], target: Any, index: Any) -> Node:
        of, at = self.compile(target), self.compile(index)
        return lambda env: _fetch(of(env), at(env), False)

    def _call(self, node: Tree[Token], token: Token, args: Tree[Token] | None) -> Node:
        name = str(token)
        compiled = self._args(args)
        if name in self.functions:
            arity = self.functions[name]
            self._check_arity(name, arity, compiled, token)
            return lambda env: _call_env(env, name, [a(env) for a in compiled])
        if name not in BUILTINS:
            known = ", ".join(sorted({*BUILTINS, *self.functions}))
            raise ExpressionError(f"unknown function {name!r} (known: {known})", token.column or 0)
        fn, arity = BUILTINS[name]
        self._check_arity(name, arity, compiled, token)
        return lambda env: fn(*(a(env) for a in compiled))

    @staticmethod
    def _check_arity(name: str, arity: int, args: list[Node], token: Token) -> None:
        if len(args) != arity:
            raise ExpressionError(
                f"{name} takes {arity} argument{'s' if arity != 1 else ''}, got {len(args)}",
                token.column or 0,
            )

    # operators -----------------------------------------------------------------------------
    def _ternary(self, _: Tree[Token], cond: Any, yes: Any, no: Any) -> Node:
        c, y, n = self.compile(cond), self.compile(yes), self.compile(no)

        def run(env: Env) -> Any:
            return y(env) if _boolean(c(env), "?:") else n(env)

        return run

    def _logic(self, _: Tree[Token], left: Any, op: Token, right: Any) -> Node:
        a, b = self.compile(left), self.compile(right)
        if op.type == "OR":
            return lambda env: _boolean(a(env), "||") or _boolean(b(env), "||")
        return lambda env: _boolean(a(env), "&&") and _boolean(b(env), "&&")

    def _negate(self, _: Tree[Token], op: Token, operand: Any) -> Node:
        a = self.compile(operand)
        return lambda env: not _boolean(a(env), "!")

    def _sign(self, _: Tree[Token], op: Token, operand: Any) -> Node:
        a = self.compile(operand)
        negative = str(op) == "-"

        def run(env: Env) -> Any:
            value = a(env)
            if not _is_number(value):
                raise ExpressionError(f"invalid operation: {op}{_type(value)}")
            return -value if negative else value

        return run

    def _coalesce(self, _: Tree[Token], left: Any, right: Any) -> Node:
        a, b = self.compile(left), self.compile(right)

        def run(env: Env) -> Any:
            value = a(env)
            return b(env) if value is None else value

        return run

    def _arith(self, _: Tree[Token], left: Any, op: Token, right: Any) -> Node:
        a, b, symbol = self.compile(left), self.compile(right), str(op)
        return lambda env: _arithmetic(symbol, a(env), b(env))

    def _compare(self, _: Tree[Token], left: Any, op: Token, right: Any) -> Node:
        a, b = self.compile(left), self.compile(right)
        if op.type == "NOT_IN":
            return lambda env: not _compare("in", a(env), b(env))
        symbol = str(op)
        if symbol == "matches" and getattr(right, "data", None) in ("string", "raw"):
            pattern = _regex(b({}), op.column or 0)  # a literal pattern is compiled at load
            return lambda env: _search(pattern, a(env))
        return lambda env: _compare(symbol, a(env), b(env))


def _column(node: Tree[Token]) -> int:
    meta = getattr(node, "meta", None)
    return int(getattr(meta, "column", 0) or 0) if meta is not None and not meta.empty else 0


def _unquote(text: str) -> str:
    body = text[1:-1]
    out: list[str] = []
    chars = iter(body)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        if nxt == "u":
            digits = "".join(next(chars, "") for _ in range(4))
            try:
                out.append(chr(int(digits, 16)))
            except ValueError:
                raise ExpressionError(f"invalid escape \\u{digits}") from None
        else:
            out.append(_ESCAPES.get(nxt, nxt))
    return "".join(out)


def _type(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, Sequence):
        return "array"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _boolean(value: Any, op: str) -> bool:
    if not isinstance(value, bool):
        raise ExpressionError(f"invalid operation: {op} needs booleans, got {_type(value)}")
    return value


def _fetch(value: Any, key: Any, optional: bool) -> Any:
    if value is None:
        if optional:
            return None
        raise ExpressionError(f"cannot fetch {key!r} from nil")
    if isinstance(value, Mapping):
        return value.get(key) if isinstance(key, str) else None
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not _is_number(key) or int(key) != key:
            raise ExpressionError(f"cannot fetch {key!r} from an array (index with a number)")
        index = int(key)
        if not -len(value) <= index < len(value):
            raise ExpressionError(f"index out of range: {index} (array of {len(value)})")
        return value[index]
    if isinstance(value, str) and _is_number(key) and int(key) == key:
        if not -len(value) <= int(key) < len(value):
            raise ExpressionError(f"index out of range: {int(key)} (string of {len(value)})")
        return value[int(key)]
    raise ExpressionError(f"cannot fetch {key!r} from {_type(value)}")


def _call_env(env: Env, name: str, args: list[Any]) -> Any:
    fn = env.get(name)
    if not callable(fn):
        raise ExpressionError(f"{name} is not available")
    return fn(*args)


def _equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if type(a) is not type(b) and not (
        (isinstance(a, Mapping) and isinstance(b, Mapping))
        or (isinstance(a, list | tuple) and isinstance(b, list | tuple))
    ):
        return False
    return bool(a == b)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("<", "<=", ">", ">="):
        if not ((_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise ExpressionError(f"invalid operation: {_type(a)} {op} {_type(b)}")
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    if op == "in":
        if b is None:
            return False
        if isinstance(b, Mapping):
            return isinstance(a, str) and a in b
        if isinstance(b, list | tuple):
            return any(_equal(a, item) for item in b)
        raise ExpressionError(f"invalid operation: in {_type(b)} (needs an array or a map)")
    if not (isinstance(a, str) and isinstance(b, str)):
        raise ExpressionError(f"invalid operation: {_type(a)} {op} {_type(b)} (needs strings)")
    if op == "contains":
        return b in a
    if op == "startsWith":
        return a.startswith(b)
    if op == "endsWith":
        return a.endswith(b)
    return _search(_regex(b), a)  # matches, with a pattern computed at run time


def _regex(pattern: Any, column: int = 0) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise ExpressionError(f"matches needs a string pattern, got {_type(pattern)}", column)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"invalid regular expression {pattern!r}: {exc}", column) from None


def _search(pattern: re.Pattern[str], value: Any) -> bool:
    if not isinstance(value, str):
        raise ExpressionError(f"invalid operation: {_type(value)} matches (needs a string)")
    return pattern.search(value) is not None


def _arithmetic(op: str, a: Any, b: Any) -> Any:
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        return a + b
    if not (_is_number(a) and _is_number(b)):
        raise ExpressionError(f"invalid operation: {_type(a)} {op} {_type(b)}")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.nan if a == 0 else math.copysign(math.inf, a)
        return a / b
    if op == "%":
        if not (isinstance(a, int) and isinstance(b, int)):
            raise ExpressionError(f"invalid operation: {_type(a)} % {_type(b)} (needs integers)")
        if b == 0:
            raise ExpressionError("integer divide by zero")
        return int(math.fmod(a, b))  # Go's % keeps the dividend's sign
    try:
        return float(a) ** float(b)
    except (OverflowError, ZeroDivisionError):
        return math.inf
