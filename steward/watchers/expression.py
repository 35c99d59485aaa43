"""expression: ``success_when`` / ``fail_when`` over the machine's data and the node's facts.

Choria's expression watcher, with its edge: each check evaluates ``success_when`` first, then
``fail_when``; a match fires its transition only when the previous check did not match the
same way, so a condition that stays true fires once. A check where neither matches, or one
that could not be evaluated, fires nothing and re-arms both edges. The edges also re-arm
whenever the watcher becomes active (Choria's "skipped" while the state does not match).

The expressions (the expr-lang subset in ``steward.expressions``) are compiled at load, so an
unknown function or name, or bad syntax, rejects the machine with the position. They see
``data`` (the machine's data), ``facts`` (the node's facts, read afresh at each check),
``identity`` (the node's name) and ``get_fact(path)`` (a GJSON path into the facts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from steward import gjson
from steward.expressions import Expression, ExpressionError
from steward.machine.source import Fields
from steward.watchers.base import Outcome, Watcher, WatcherResult

TYPE = "expression"
NAMES = frozenset({"data", "facts", "identity"})
FUNCTIONS = {"get_fact": 1}

log = logging.getLogger("steward.watcher")


class Match(StrEnum):
    """What a check found; the names are Choria's (its state's ``previous_outcome``)."""

    SUCCESS_WHEN = "success_when"
    FAIL_WHEN = "failed_when"
    NO_MATCH = "no_match"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class ExpressionProperties:
    success_when: Expression | None = None
    fail_when: Expression | None = None

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        success = _expression(fields, "success_when")
        fail = _expression(fields, "fail_when")
        if not fields.has("success_when") and not fields.has("fail_when"):
            fields.problems.add(fields.pos, "properties need success_when or fail_when")
        fields.finish(" in expression properties")
        return cls(success_when=success, fail_when=fail)


def _expression(fields: Fields, key: str) -> Expression | None:
    text = fields.string(key)
    if text is None:
        return None
    try:
        return Expression.parse(text, NAMES, FUNCTIONS)
    except ExpressionError as exc:
        where = f" at column {exc.column} of the expression" if exc.column else ""
        fields.error(key, f"invalid expression: {exc.message}{where}")
        return None


class ExpressionWatcher(Watcher):
    TYPE = TYPE
    Properties = ExpressionProperties
    default_interval = 10.0  # Choria's

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._previous = Match.SKIPPED
        self._last_error: str | None = None

    @property
    def props(self) -> ExpressionProperties:
        p = self.spec.properties
        assert isinstance(p, ExpressionProperties)
        return p

    def activate(self) -> None:
        self._previous = Match.SKIPPED  # edges re-arm on every activation
        super().activate()

    async def check(self) -> WatcherResult:
        previous = self._previous
        error: str | None = None
        try:
            match = self._evaluate()
        except ExpressionError as exc:
            match, error = Match.ERROR, str(exc)
        self._previous = match
        payload = {"previous_outcome": match.value, "error": error}
        if error is not None:
            if error != self._last_error:
                log.warning(
                    "expression could not be evaluated: %s",
                    error,
                    extra={"machine": self.machine.name, "watcher": self.name},
                )
            self._last_error = error
            return WatcherResult(Outcome.UNCHANGED, f"error: {error}", payload=payload)
        self._last_error = None
        if match is Match.SUCCESS_WHEN:
            outcome = Outcome.SUCCESS if previous is not match else Outcome.UNCHANGED
            return WatcherResult(outcome, "success_when matched", payload=payload)
        if match is Match.FAIL_WHEN:
            outcome = Outcome.FAILURE if previous is not match else Outcome.UNCHANGED
            return WatcherResult(outcome, "fail_when matched", payload=payload)
        return WatcherResult(Outcome.UNCHANGED, "no expression matched", payload=payload)

    def _evaluate(self) -> Match:
        env = self._environment()
        props = self.props
        if props.success_when is not None and props.success_when.truth(env):
            return Match.SUCCESS_WHEN
        if props.fail_when is not None and props.fail_when.truth(env):
            return Match.FAIL_WHEN
        return Match.NO_MATCH

    def _environment(self) -> dict[str, Any]:
        # read at each check: a reload of the facts file swaps them
        facts: Mapping[str, Any] = self.context.node.facts.current

        def get_fact(query: Any) -> Any:
            if not isinstance(query, str):
                raise ExpressionError("get_fact needs a string path")
            try:
                return gjson.get(facts, query)[1]
            except gjson.PathError as exc:
                raise ExpressionError(f"get_fact: {exc}") from None

        return {
            "data": self.machine.data_snapshot(),
            "facts": facts,
            "identity": self.context.node.name,
            "get_fact": get_fact,
        }
