"""parse_duration: the one duration parser."""

from __future__ import annotations

import pytest

from steward.machine.durations import parse_duration

UNIT_HINT = "(use a number and a unit: ms, s, m, h, d, w; e.g. 1m30s)"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("0", 0.0),
        ("0s", 0.0),
        (".5s", 0.5),
        ("1h30m15s", 5415.0),
        (" 10s ", 10.0),
    ],
)
def test_accepted(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "seconds"), [("100ns", 1e-7), ("10us", 1e-5), ("10µs", 1e-5)])
def test_sub_millisecond_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", "duration '10' has no unit (use e.g. 10s)"),
        ("1.5", "duration '1.5' has no unit (use e.g. 1.5s)"),
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("abc", f"invalid duration 'abc' {UNIT_HINT}"),
        ("5x", f"invalid duration '5x' {UNIT_HINT}"),
        ("1m30", f"invalid duration '1m30' {UNIT_HINT}"),
        ("-1s", f"invalid duration '-1s' {UNIT_HINT}"),
        ("1 s", f"invalid duration '1 s' {UNIT_HINT}"),
        ("10S", f"invalid duration '10S' {UNIT_HINT}"),
        ("1e3s", f"invalid duration '1e3s' {UNIT_HINT}"),
    ],
)
def test_rejected(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_too_large() -> None:
    text = "9" * 400 + "w"
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"duration {text!r} is too large"
