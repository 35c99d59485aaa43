"""A governor's name, and the stream and subject Choria derives from it.

Choria keeps governor ``NAME`` in the JetStream stream ``GOVERNOR_NAME``, which listens on
``<collective>.governor.NAME`` (collective ``choria`` by default). steward uses the same
layout, so Choria and steward nodes share one governor.

Choria does not check a name itself; JetStream does (jsm.go's ``IsValidName`` and the
server): a stream name must not hold ``.``, ``*``, ``>``, a path separator or whitespace, and
the name is also one subject token. steward checks the same rules up front so the error is
one clear line at load (or when a template renders) instead of a server error at run time.
"""

from __future__ import annotations

from steward.errors import GovernorError

COLLECTIVE = "choria"  # Choria's default main collective
STREAM_PREFIX = "GOVERNOR_"
MAX_NAME = 255 - len(STREAM_PREFIX)  # JetStream stream names are at most 255 characters
FORBIDDEN = ".*>/\\"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a governor, or None when it can."""
    if not name:
        return "a governor name must not be empty"
    bad = sorted({c for c in name if c in FORBIDDEN or c.isspace() or not c.isprintable()})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        return (
            f"governor name {name!r} contains {shown}: a name must not hold "
            "'.', '*', '>', '/', '\\', whitespace or control characters"
        )
    if len(name) > MAX_NAME:
        return f"governor name is {len(name)} characters long; at most {MAX_NAME} are allowed"
    return None


def check_name(name: str) -> str:
    """``name``, or GovernorError saying why it cannot name a governor."""
    problem = name_problem(name)
    if problem is not None:
        raise GovernorError(problem)
    return name


def stream_name(governor: str) -> str:
    return f"{STREAM_PREFIX}{governor}"


def campaign_subject(governor: str, collective: str = COLLECTIVE) -> str:
    """The subject a worker publishes to for a slot (Choria's ``util.GovernorSubject``)."""
    return f"{collective}.governor.{governor}"
