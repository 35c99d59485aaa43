"""The expr-lang subset: what it computes, and what it refuses at parse and at run time."""

from __future__ import annotations

import math
from typing import Any

import pytest

from steward.expressions import Expression, ExpressionError

NAMES = frozenset({"data", "facts", "identity"})
ENV: dict[str, Any] = {
    "data": {"x": 5, "f": 2.5, "s": "hello", "l": [1, 2, 3], "m": {"a": 1}, "none": None},
    "facts": {"os": {"family": "debian"}},
    "identity": "n1",
    "get_fact": lambda path: "debian" if path == "os.family" else None,
}


def value(text: str) -> Any:
    return Expression.parse(text, NAMES, {"get_fact": 1}).evaluate(ENV)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data.x > 3", True),
        ("data.x > 3 && data.s == 'hello'", True),
        ("data.x > 3 and not (data.s == 'hello')", False),
        ("!true || false", False),
        ("data.x >= 5 or nil == 1", True),
        ("2 in data.l", True),
        ("4 not in data.l", True),
        ('"a" in data.m', True),
        ('data.s matches "^h.l+o$"', True),
        ("data.s matches `l{2}`", True),
        ('data.s contains "ell" && data.s startsWith "he" && data.s endsWith "lo"', True),
        ("len(data.l) + len(data.s) + len(data.m)", 9),
        ('data["x"] * 2 - 1', 9),
        ("data.l[-1] ** 2", 9.0),
        ("-data.x + 1", -4),
        ("data.x / 2", 2.5),
        ("-7 % 3", -1),  # Go: the sign of the dividend
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("data.missing ?? 'default'", "default"),
        ("data.missing?.deeper", None),
        ("data.none == nil", True),
        ("data.x == 5.0", True),
        ("true == 1", False),
        ("'5' == 5", False),
        ("data.x > 3 ? 'big' : 'small'", "big"),
        ("facts.os.family == 'debian'", True),
        ("get_fact('os.family')", "debian"),
        ("identity", "n1"),
        ("{'k': [1, 2], other: 3}.k[1]", 2),
        ("lower('AB') + upper('c') + trim('  d ')", "abCd"),
        ("int('42') + float('0.5') + abs(-1)", 43.5),
        ("string(2.0) + string(true)", "2true"),
        ("keys(data.m)", ["a"]),
        ("1_000 == 1e3", True),
        ('"tab\\there" contains "\\t"', True),
    ],
)
def test_computes_like_expr_lang(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_division_by_zero_is_a_float_infinity_like_go() -> None:
    assert value("1 / 0") == math.inf
    with pytest.raises(ExpressionError, match="divide by zero"):
        value("1 % 0")


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("foo(1) > 1", "unknown function 'foo'", 1),
        ("data.x > 1 && nope", "unknown name 'nope'", 15),
        ("len(1, 2)", "len takes 1 argument, got 2", 1),
        ("get_fact()", "get_fact takes 1 argument, got 0", 1),
        ("len > 1", "len is a function", 1),
        ("data.x >", "unexpected end of expression", 9),
        ("data.x ==== 1", "unexpected '=='", 10),
        ("data.x & 1", "unexpected character '&'", 8),
        ("data.s matches '('", "invalid regular expression", 8),
        ("all(data.l, {# > 1})", "unexpected character '#'", 14),
        ("   ", "empty expression", 0),
    ],
)
def test_refuses_at_parse_time_with_the_column(text: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        Expression.parse(text, NAMES, {"get_fact": 1})
    assert message in caught.value.message
    assert caught.value.column == column


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data.missing.deeper == 1", "cannot fetch 'deeper' from nil"),
        ("data.s > 1", "invalid operation: string > int"),
        ("data.x && true", "&& needs booleans, got int"),
        ("data.l[7] == 1", "index out of range"),
        ("data.x contains 'a'", "needs strings"),
        ("data.x", "expected a boolean result, got int"),
    ],
)
def test_run_time_errors_are_expression_errors(text: str, message: str) -> None:
    expression = Expression.parse(text, NAMES)
    with pytest.raises(ExpressionError, match=message):
        expression.truth(ENV)


def test_keywords_are_whole_words() -> None:
    names = frozenset({"nothing", "order", "index"})
    env = {"nothing": 1, "order": 2, "index": 3}
    assert Expression.parse("nothing + order + index", names).evaluate(env) == 6


def test_logic_short_circuits() -> None:
    assert value("false && data.missing.deeper") is False
    assert value("true || data.missing.deeper") is True
