"""An entry's ``match``: Choria's expr-lang expression over the node (``IsNodeMatch``).

Functions: ``identity(regex)`` (the node name matches), ``get_fact(path)`` (a GJSON path
into the facts), ``has_file(path)`` (anything there, as Choria's stat), ``has_directory(path)``,
``has_command(name)`` (an executable on PATH). An empty expression matches every node. The
last three touch the file system: evaluate in a thread.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from steward import gjson
from steward.expressions import Expression, ExpressionError

FUNCTIONS = {
    "identity": 1,
    "get_fact": 1,
    "has_file": 1,
    "has_directory": 1,
    "has_command": 1,
}


def compile_match(text: str) -> Expression | None:
    """The compiled expression (None: matches all); ExpressionError with its column."""
    if not text.strip():
        return None
    return Expression.parse(text, frozenset(), FUNCTIONS)


def matches(text: str, identity: str, facts: Mapping[str, Any]) -> bool:
    """Whether the node matches; ExpressionError when the expression is broken."""
    expression = compile_match(text)
    if expression is None:
        return True
    return expression.truth(environment(identity, facts))


def environment(identity: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    def identity_matches(pattern: Any) -> bool:
        try:
            return re.search(_string(pattern, "identity"), identity) is not None
        except re.error as exc:
            raise ExpressionError(f"identity: invalid regular expression: {exc}") from None

    def get_fact(query: Any) -> Any:
        try:
            return gjson.get(facts, _string(query, "get_fact"))[1]
        except gjson.PathError as exc:
            raise ExpressionError(f"get_fact: {exc}") from None

    return {
        "identity": identity_matches,
        "get_fact": get_fact,
        "has_file": lambda p: Path(_string(p, "has_file")).exists(),  # Choria: a stat
        "has_directory": lambda p: Path(_string(p, "has_directory")).is_dir(),
        "has_command": lambda c: shutil.which(_string(c, "has_command")) is not None,
    }


def _string(value: Any, function: str) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{function} needs a string")
    return value
