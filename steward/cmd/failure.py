"""How every command fails: one line on stderr, a non-zero exit, never a traceback."""

from __future__ import annotations

import sys

from steward.cmd.output import echo

TYPE_CHECKING = False  # no `typing` import at run time (see steward.cmd.args)
if TYPE_CHECKING:
    from typing import NoReturn


def fail(message: str, code: int = 1) -> NoReturn:
    echo(f"steward: error: {message}", err=True)
    sys.exit(code)
