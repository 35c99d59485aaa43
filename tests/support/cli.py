"""The command line in this process: ``steward.cmd.main.main`` called with argv, its output
captured (what click's ``CliRunner`` gave the unit tests)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from steward.cmd.main import main


@dataclass(frozen=True)
class Invocation:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr (a failing command prints only on stderr)."""
        return self.stdout + self.stderr


def invoke(*argv: str) -> Invocation:
    """Run ``steward ARGV…``: its exit code (also when it exits through ``SystemExit``)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Invocation(code, out.getvalue(), err.getvalue())
