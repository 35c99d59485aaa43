"""The one exception of the template package."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; ``column`` is 1-based in its text
    (counting every character from the start, newlines included; 0 when unknown)."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
