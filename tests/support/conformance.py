"""The Choria conformance corpus: machine files from public Choria repositories, unchanged.

Where each file comes from, its licence and what steward makes of it are in the corpus's
README.md; ``tests/unit/machine/test_conformance_corpus.py`` holds the expected verdicts.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "conformance" / "choria"


def corpus_files() -> list[Path]:
    """Every machine file of the corpus, by name."""
    return sorted(CORPUS.glob("*.yaml"))
