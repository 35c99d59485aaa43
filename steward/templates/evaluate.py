"""Rendering a parsed template: each action's pipeline evaluated, its value printed as Go does.

Arguments whose kind the parser could not know (a ``lookup`` result, say) are checked here; a
failure is a TemplateError with the column of the call that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steward.templates.errors import TemplateError
from steward.templates.functions import FUNCTIONS, Scope, is_list
from steward.templates.syntax import Call, Dot, Fields, Literal, Node, Operand, Pipeline
from steward.templates.values import go_format, go_text


def render(
    nodes: tuple[Node, ...], facts: Mapping[str, Any], data: Mapping[str, Any], dot: Any
) -> str:
    evaluation = _Evaluation(Scope({"facts": facts, "data": data}), dot)
    return "".join(
        node if isinstance(node, str) else go_text(evaluation.pipeline(node.pipeline))
        for node in nodes
    )


class _Evaluation:
    def __init__(self, scope: Scope, dot: Any) -> None:
        self.scope = scope
        self.dot = dot

    def pipeline(self, pipeline: Pipeline) -> Any:
        value: Any = None
        for command in pipeline.commands:
            if isinstance(command, Call):
                value = self.call(command, value)
            else:
                value = self.operand(command)
        return value

    def operand(self, node: Operand) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Call):
            return self.call(node, None)
        if isinstance(node, Pipeline):
            return self.pipeline(node)
        if isinstance(node, Dot):
            return self.fields(self.dot, node.fields, node.column)
        if isinstance(node, Fields):
            return self.fields(self.pipeline(node.target), node.fields, node.column)
        raise AssertionError(node)

    def call(self, call: Call, piped: Any) -> Any:
        function = FUNCTIONS[call.name]
        args = [self.operand(arg) for arg in call.args]
        if call.piped:
            args.append(piped)
        for i, (arg, param) in enumerate(zip(args, function.signature.params, strict=True)):
            if param == "string" and not isinstance(arg, str):
                raise TemplateError(
                    f"{call.name}: argument {i + 1} must be a string, got {_describe(arg)}",
                    call.column,
                )
            if param == "list" and not is_list(arg):
                raise TemplateError(
                    f"{call.name}: argument {i + 1} must be a list, got {_describe(arg)}",
                    call.column,
                )
        try:
            return function.body(self.scope, args)
        except ValueError as exc:
            raise TemplateError(f"{call.name}: {exc}", call.column) from None

    def fields(self, value: Any, names: tuple[str, ...], column: int) -> Any:
        for name in names:
            if value is None:
                return None  # Go: a field of nothing is nothing (printed <no value>)
            if not isinstance(value, Mapping):
                raise TemplateError(f"can't evaluate field {name} in {_describe(value)}", column)
            value = value.get(name)
        return value


def _describe(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return f"a boolean ({go_format(value)})"
    if isinstance(value, int | float):
        return f"a number ({go_format(value)})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, Mapping):
        return "a map"
    if is_list(value):
        return "a list"
    return type(value).__name__
