"""Code run in a fresh interpreter: what a module imports shows only in a process that has
not imported everything already (the test process has)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_fresh(code: str, *args: str) -> str:
    """Run ``code`` (dedented) with ``args`` in a new interpreter whose path is the
    repository; its standard output. A non-zero exit fails the test with its stderr."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout
