"""Parts of the command line that import their code only when a command needs it.

An operator types ``steward status`` all day and scripts call it in loops: each command pays
only for its own imports. A ``LazyGroup`` loads a subcommand (``governor``, ``fleet``) when it
is invoked or listed; a ``LazyChoice`` reads its values when an option is parsed or its help
is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import click

CommandLoader = Callable[[], click.Command]


class LazyGroup(click.Group):
    """A group whose ``lazy`` commands are built by their loader on first use."""

    def __init__(self, *args: object, lazy: Mapping[str, CommandLoader], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        loader = self.lazy.pop(cmd_name, None)
        if loader is not None:
            self.add_command(loader(), cmd_name)
        return super().get_command(ctx, cmd_name)


class LazyChoice(click.Choice[str]):
    """``click.Choice`` over values that ``load`` returns when they are first needed."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        if self._choices is None:
            self._choices = tuple(self._load())
        return self._choices

    @choices.setter
    def choices(self, values: Sequence[str]) -> None:
        self._choices = tuple(values)
