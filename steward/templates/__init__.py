"""Choria's per-node templates in watcher properties: ``{{ lookup "facts.x" "default" }}``.

Choria expands Go ``text/template`` actions in some watcher properties (exec ``command`` and
``environment``, kv ``key``, gossip ``subject``/``payload``, governor names …) at each run,
over ``{"facts": <node facts>, "data": <machine data>}``. A property that may hold one is read
with ``Fields.template`` and kept as a ``Template``: parsed (and rejected with its column) at
load, rendered afresh at each run.

The grammar is the part of text/template Choria's machines and documents use
(``syntax.py``); the functions are Choria's (``functions.py``); values print as Go prints them
(``values.py``). Nothing is ever evaluated as Python. Text without ``{{`` is static: it is
never parsed and renders to itself.

    TemplateError (ValueError)      parse or render failure; .message, .column (1-based)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from steward.templates.errors import TemplateError
from steward.templates.functions import FUNCTIONS, SIGNATURES, Scope, is_list
from steward.templates.syntax import (
    LEFT,
    Call,
    Dot,
    Fields,
    Literal,
    Node,
    Operand,
    Pipeline,
    parse,
)
from steward.templates.values import go_format, go_text

__all__ = ["Template", "TemplateError"]


@dataclass(frozen=True)
class Template:
    source: str
    nodes: tuple[Node, ...] = field(default=(), compare=False, repr=False)
    uses_dot: bool = field(default=False, compare=False)  # reads '.' (the data it is given)

    @classmethod
    def parse(cls, text: str) -> Template:
        """The template in ``text``; TemplateError (with the column) if it is not valid."""
        if LEFT not in text:
            return cls(text)
        parsed = parse(text, SIGNATURES)
        if all(isinstance(node, str) for node in parsed.nodes):  # only comments and trims
            return cls(text, ("".join(parsed.nodes),))  # type: ignore[arg-type]
        return cls(text, parsed.nodes, parsed.uses_dot)

    @property
    def static(self) -> bool:
        """True when the text has no actions: it renders the same whatever the facts and
        data (to itself, unless it holds comments or trim markers)."""
        return not self.nodes or all(isinstance(n, str) for n in self.nodes)

    def render(self, facts: Mapping[str, Any], data: Mapping[str, Any], dot: Any = None) -> str:
        """The text, with every action evaluated over ``facts`` and ``data`` (and ``dot`` for
        ``.``); TemplateError (with the column of the failing call) if one fails."""
        if not self.nodes:
            return self.source
        scope = _Evaluation(Scope({"facts": facts, "data": data}), dot)
        return "".join(
            node if isinstance(node, str) else go_text(scope.pipeline(node.pipeline))
            for node in self.nodes
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
