"""Choria's per-node templates in watcher properties: ``{{ lookup "facts.x" "default" }}``.

Choria expands Go ``text/template`` actions in some watcher properties (exec ``command``, kv
``key``, gossip ``subject``/``payload``, governor names …) at each run, over
``{"facts": <node facts>, "data": <machine data>}``. A property that may hold one is read
with ``Fields.template`` and kept as a ``Template``: parsed (and rejected with its position)
at load, rendered afresh at each run.

This first version knows text without actions only; a property holding ``{{`` is rejected
at load with a clear error until the template grammar lands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; ``column`` is 1-based in its text."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


@dataclass(frozen=True)
class Template:
    source: str

    @classmethod
    def parse(cls, text: str) -> Template:
        """The template in ``text``; TemplateError if it is not a valid template."""
        at = text.find("{{")
        if at >= 0:
            raise TemplateError("templates ({{ … }}) are not supported yet", at + 1)
        return cls(text)

    @property
    def static(self) -> bool:
        """True when the text has no actions: it renders to itself."""
        return True

    def render(self, facts: Mapping[str, Any], data: Mapping[str, Any]) -> str:
        """The text, with every action evaluated over ``facts`` and ``data``."""
        return self.source
