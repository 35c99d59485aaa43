"""The command line's parser: the standard library's argparse, with click's habits kept.

steward's CLI used click; importing click took ~16 ms, twice a bare interpreter's start, before
any command ran (argparse: ~1.5 ms; bench/README.md). What click gave, kept here:

- usage errors as ``Usage: …`` / ``Try '… --help' for help.`` / ``Error: …`` on stderr, exit 2;
  a group without its subcommand prints its help on stderr and exits 2;
- no abbreviated options; help text from each command's docstring, paragraphs as written;
- built as it is used: every command adds its arguments, and ``governor`` and ``fleet`` their
  subcommands (importing their modules), only when they are run or their help is shown (a
  ``Parser`` made with ``load=`` runs it before it first parses or prints help);
- option values checked as click's types did: ``path()``, ``int_range()``, ``LazyChoices``.

A command is a plain function whose keyword parameters are its options' ``dest`` names;
``command()`` registers it, and ``steward.cmd.main`` calls it with the parsed values.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Sequence

TYPE_CHECKING = False  # `typing` is ~1.7 ms of a command's start; type checkers read this as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn, TypeAlias

    Handler: TypeAlias = Callable[..., Any]
    Subcommands: TypeAlias = argparse._SubParsersAction["Parser"]

USAGE = 2  # exit code of a usage error


class Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help, titled ``Usage:`` as click's was; descriptions keep their lines.

    argparse makes a formatter for every argument added (to check its metavar), and its own
    asks ``shutil`` for the terminal's width: shutil imports zlib, bz2 and lzma. This one
    asks ``os``, as shutil would (``$COLUMNS``, then the terminal, else 80).
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2  # argparse's own margin
        super().__init__(prog, indent_increment, max_help_position, width)

    def add_usage(
        self,
        usage: str | None,
        actions: Any,
        groups: Any,
        prefix: str | None = None,
    ) -> None:
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` with click's usage errors, optionally built on first use."""

    def __init__(
        self, *args: Any, load: Callable[[Parser], None] | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        kwargs.setdefault("allow_abbrev", False)
        kwargs["add_help"] = False  # ours: click's wording, added with the rest
        super().__init__(*args, **kwargs)
        self._load = load
        self._help_added = False
        self.set_defaults(_parser=self)
        if load is None:
            self.loaded()

    def loaded(self) -> Parser:
        """This parser with its arguments and subcommands added (``load`` runs once).

        Adding an argument costs ~40 µs (argparse formats its metavar to check it), and a
        command line of ~60 would cost ~2.5 ms per start: each command adds its own when
        it is the one run, or its help is shown."""
        if not self._help_added:
            self._help_added = True
            self.add_argument("-h", "--help", action="help", help="Show this message and exit.")
        if self._load is not None:
            load, self._load = self._load, None
            load(self)
        return self

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self.loaded()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.loaded()
        if self.description:
            self.description = docstring(self.description)
        return super().format_help()

    def subcommands(self) -> Subcommands:
        return self.add_subparsers(title="commands", metavar="COMMAND", dest="_command")

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE, f"Try '{self.prog} --help' for help.\n\nError: {message}\n")


def command(
    subparsers: Subcommands,
    run: Handler,
    name: str | None = None,
    **kwargs: Any,
) -> Parser:
    """Add ``run`` as a subcommand (its name by default, less a trailing ``_``); its docstring
    is the help, its first paragraph the line in the group's list. With ``load=``, the
    function that adds its arguments when it is used."""
    doc = run.__doc__ or ""
    parser = subparsers.add_parser(
        name or run.__name__.rstrip("_"), help=summary(doc), description=doc, **kwargs
    )
    parser.set_defaults(_run=run)
    return parser


def group(
    subparsers: Subcommands,
    name: str,
    doc: str,
    load: Callable[[Parser], None],
) -> Parser:
    """Add a group whose subcommands ``load`` adds when the group is used."""
    return subparsers.add_parser(name, help=summary(doc), description=doc, load=load)


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal's, else 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
        return 80


def summary(doc: str) -> str:
    """A docstring's first paragraph on one line."""
    return " ".join(doc.split("\n\n", 1)[0].split())


def docstring(doc: str) -> str:
    """A docstring without its indentation (``inspect.cleandoc``, without importing inspect)."""
    first, _, rest = doc.strip("\n").partition("\n")
    lines = rest.splitlines()
    indent = min((len(s) - len(s.lstrip()) for s in lines if s.strip()), default=0)
    return "\n".join([first.strip(), *(s[indent:].rstrip() for s in lines)]).strip()


# value types, with click's messages ------------------------------------------------------------
def path(
    *, exists: bool = False, file_okay: bool = True, dir_okay: bool = True, as_path: bool = False
) -> Callable[[str], Any]:
    """A path option (click's ``click.Path``): whether it must exist, and may be a file or a
    directory when it does."""

    def convert(value: str) -> Any:
        try:
            mode: int | None = os.stat(value).st_mode  # noqa: PTH116 (no pathlib import)
        except OSError:
            mode = None
        if mode is None:
            if exists:
                raise argparse.ArgumentTypeError(f"Path {value!r} does not exist.")
        elif stat.S_ISDIR(mode):
            if not dir_okay:
                raise argparse.ArgumentTypeError(f"File {value!r} is a directory.")
        elif not file_okay:
            raise argparse.ArgumentTypeError(f"Directory {value!r} is a file.")
        if as_path:
            from pathlib import Path

            return Path(value)
        return value

    convert.__name__ = "path"
    return convert


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]`` (click's ``IntRange``)."""

    def convert(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid integer range.") from None
        if number < low or (high is not None and number > high):
            bounds = f"x>={low}" if high is None else f"{low}<=x<={high}"
            raise argparse.ArgumentTypeError(f"{number} is not in the range {bounds}.")
        return number

    convert.__name__ = "integer"
    return convert


class LazyChoices(Sequence[str]):
    """Choices that ``load`` returns when an option is parsed or its help is shown."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._values: tuple[str, ...] | None = None

    @property
    def values(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values

    def __getitem__(self, index: Any) -> Any:
        return self.values[index]

    def __len__(self) -> int:
        return len(self.values)
