"""What commands print: a line on stdout or stderr, flushed at once (a followed stream, a
dashboard's URL and a pipe's reader see each line as it is written), or a JSON document."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # no `typing` import at run time (see steward.cmd.args)
if TYPE_CHECKING:
    from typing import Any


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{text}\n" if nl else text)
    stream.flush()


def dump(data: Any) -> None:
    """``data`` as indented JSON (values JSON does not know as their ``str``)."""
    import json

    echo(json.dumps(data, indent=2, default=str))
