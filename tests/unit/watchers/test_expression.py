"""The expression watcher: Choria's edge (a match fires once), facts read at each check,
and expressions rejected at load with their position."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steward.expressions import Expression
from steward.machine.spec import WatcherSpec
from steward.watchers.base import Outcome
from steward.watchers.context import Facts
from steward.watchers.expression import (
    FUNCTIONS,
    NAMES,
    ExpressionProperties,
    ExpressionWatcher,
)
from tests.support.fakes import fake_context
from tests.support.machines import Handle, machine_yaml, messages, parse


def make(
    tmp_path: Path, success: str | None, fail: str | None = None, facts: Any = None
) -> tuple[ExpressionWatcher, dict[str, Any]]:
    props = ExpressionProperties(
        success_when=Expression.parse(success, NAMES, FUNCTIONS) if success else None,
        fail_when=Expression.parse(fail, NAMES, FUNCTIONS) if fail else None,
    )
    spec = WatcherSpec(name="expr", type="expression", properties=props)
    data: dict[str, Any] = {}
    handle = Handle(tmp_path)
    handle.data_snapshot = lambda: dict(data)  # type: ignore[method-assign]
    context = fake_context(tmp_path, facts=facts)
    return ExpressionWatcher(spec, handle, context), data


async def test_a_match_fires_once_until_it_stops_matching(tmp_path: Path) -> None:
    watcher, data = make(tmp_path, "data.load < 1", "data.load > 5")
    data["load"] = 0.5
    outcomes = [(await watcher.check()).outcome]
    outcomes.append((await watcher.check()).outcome)  # still matching: no new transition
    data["load"] = 9
    outcomes.append((await watcher.check()).outcome)
    outcomes.append((await watcher.check()).outcome)
    data["load"] = 3
    outcomes.append((await watcher.check()).outcome)  # neither: re-arms both edges
    data["load"] = 9
    outcomes.append((await watcher.check()).outcome)
    assert outcomes == [
        Outcome.SUCCESS,
        Outcome.UNCHANGED,
        Outcome.FAILURE,
        Outcome.UNCHANGED,
        Outcome.UNCHANGED,
        Outcome.FAILURE,
    ]


async def test_success_when_is_evaluated_first(tmp_path: Path) -> None:
    watcher, _ = make(tmp_path, "true", "true")
    result = await watcher.check()
    assert result.outcome is Outcome.SUCCESS
    assert result.payload == {"previous_outcome": "success_when", "error": None}


async def test_becoming_active_re_arms_the_edge(tmp_path: Path) -> None:
    watcher, _ = make(tmp_path, "true")
    assert (await watcher.check()).outcome is Outcome.SUCCESS
    watcher.activate()
    watcher.deactivate()  # cancels the run activate() started; the edge stays re-armed
    assert (await watcher.check()).outcome is Outcome.SUCCESS


async def test_an_evaluation_error_fires_nothing_and_re_arms(tmp_path: Path) -> None:
    watcher, data = make(tmp_path, "data.service.up == true")
    errored = await watcher.check()  # data.service is nil: cannot fetch up
    assert errored.outcome is Outcome.UNCHANGED
    assert errored.payload["previous_outcome"] == "error"
    assert "cannot fetch 'up' from nil" in errored.payload["error"]
    data["service"] = {"up": True}
    assert (await watcher.check()).outcome is Outcome.SUCCESS


async def test_facts_identity_and_get_fact_are_read_at_each_check(tmp_path: Path) -> None:
    facts = Facts({"os": {"family": "debian"}})
    watcher, _ = make(
        tmp_path,
        "get_fact('os.family') == 'redhat' && facts.os.family == 'redhat' && identity == 'n1'",
        facts=facts,
    )
    assert (await watcher.check()).outcome is Outcome.UNCHANGED
    facts.replace({"os": {"family": "redhat"}})  # a reload of the facts file
    assert (await watcher.check()).outcome is Outcome.SUCCESS


def test_an_unknown_function_is_a_load_error_with_its_position() -> None:
    text = machine_yaml("expression", "success_when: frobnicate(data.x) > 1")
    assert messages(text) == [
        "m.yaml:16:21: watchers[0].properties.success_when: invalid expression: unknown "
        "function 'frobnicate' (known: abs, float, get_fact, int, keys, len, lower, string, "
        "trim, upper, values) at column 1 of the expression"
    ]


def test_bad_syntax_and_a_missing_expression_are_load_errors() -> None:
    bad = messages(machine_yaml("expression", "fail_when: 'data.x >'"))
    assert bad == [
        "m.yaml:16:18: watchers[0].properties.fail_when: invalid expression: unexpected end "
        "of expression at column 9 of the expression"
    ]
    none = messages(machine_yaml("expression", "{}"))
    assert any("properties need success_when or fail_when" in m for m in none)


def test_a_valid_definition_compiles_both_expressions() -> None:
    spec = parse(machine_yaml("expression", "success_when: data.x == 1", "fail_when: 'false'"))
    props = spec.watchers[0].properties
    assert isinstance(props, ExpressionProperties)
    assert props.success_when is not None and props.fail_when is not None
