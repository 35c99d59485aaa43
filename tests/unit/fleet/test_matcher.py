"""An entry's match over the node: Choria's functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.expressions import ExpressionError
from steward.fleet.matcher import compile_match, matches

FACTS = {"os": {"family": "debian"}, "role": "web", "cpus": 4}


@pytest.mark.parametrize(
    ("expression", "identity", "expected"),
    [
        ("", "any", True),
        ('identity("^web")', "web1.example", True),
        ('identity("^web")', "db1.example", False),
        ('get_fact("os.family") == "debian" && get_fact("cpus") > 2', "n", True),
        ('get_fact("role") == "db"', "n", False),
        ('get_fact("missing") == nil', "n", True),
        ('has_command("sh") && !has_command("no-such-command-here")', "n", True),
    ],
)
def test_match(expression: str, identity: str, expected: bool) -> None:
    assert matches(expression, identity, FACTS) is expected


def test_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "f").touch()
    assert matches(f'has_file("{tmp_path}/f") && has_directory("{tmp_path}")', "n", {})
    assert not matches(f'has_directory("{tmp_path}/f")', "n", {})
    assert not matches(f'has_file("{tmp_path}/none")', "n", {})


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('identity("^web"', "unexpected end"),
        ('other("x")', "other"),
        ('get_fact("role")', "boolean"),
        ('identity("(")', "invalid regular expression"),
    ],
)
def test_broken_expressions_are_errors(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        matches(expression, "n", FACTS)


def test_empty_matches_all_without_compiling() -> None:
    assert compile_match("  ") is None
