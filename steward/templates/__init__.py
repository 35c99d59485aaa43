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
from typing import TYPE_CHECKING, Any

from steward.templates.errors import TemplateError

if TYPE_CHECKING:
    from steward.templates.syntax import Node

LEFT = "{{"

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
        # loaded on first use: a node whose machines hold no templates never imports them
        from steward.templates.functions import SIGNATURES
        from steward.templates.syntax import parse

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
        if len(self.nodes) == 1 and isinstance(self.nodes[0], str):
            return self.nodes[0]
        from steward.templates.evaluate import render

        return render(self.nodes, facts, data, dot)
