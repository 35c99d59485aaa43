"""Governor names: what JetStream accepts as a stream name and one subject token."""

from __future__ import annotations

import pytest

from steward.errors import GovernorError
from steward.governor import campaign_subject, check_name, name_problem, stream_name


@pytest.mark.parametrize("name", ["cron", "PUPPET", "db-backup_2", "ünïcode", "a" * 246])
def test_names_choria_uses_are_valid(name: str) -> None:
    assert name_problem(name) is None
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a.b", "'.'"),
        ("a*", "'*'"),
        ("a>", "'>'"),
        ("a/b", "'/'"),
        ("a\\b", "'\\\\'"),
        ("a b", "' '"),
        ("a\tb", "'\\t'"),
        ("a\x00", "'\\x00'"),
    ],
)
def test_names_jetstream_refuses_say_which_character(name: str, shown: str) -> None:
    problem = name_problem(name)
    assert problem is not None and shown in problem
    with pytest.raises(GovernorError, match="must not hold"):
        check_name(name)


def test_empty_and_too_long_names_are_refused() -> None:
    assert name_problem("") == "a governor name must not be empty"
    problem = name_problem("a" * 247)
    assert problem is not None and "at most 246" in problem


def test_stream_and_subject_follow_choria() -> None:
    assert stream_name("cron") == "GOVERNOR_cron"
    assert campaign_subject("cron") == "choria.governor.cron"
    assert campaign_subject("cron", "acme") == "acme.governor.cron"
