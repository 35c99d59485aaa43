"""kv: how a stored value becomes machine data, and what counts as a change (Choria's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from steward.gjson import Path
from steward.watchers.kv_value import (
    MISSING,
    Change,
    Read,
    Seen,
    UnusableValue,
    decode,
    judge,
    same,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"spec": "foo"}', {"spec": "foo"}),
        (b'\n   \t{"spec": "foo"}\t  \n', {"spec": "foo"}),  # Choria's #2037 cases
        (b'[1, 2, {"a": true}]', [1, 2, {"a": True}]),
        (b"green", "green"),
        (b"  green \n", "  green \n"),  # text is kept as it is stored
        (b"[1, 2", "[1, 2"),  # does not even look like JSON
        (b"42", "42"),  # a JSON scalar is text, as in Choria
        (b'"quoted"', '"quoted"'),
        (b"", ""),
        (b"caf\xc3\xa9", "café"),
    ],
)
def test_decode_as_choria_does(raw: bytes, expected: Any) -> None:
    assert decode(raw) == expected


def test_a_query_picks_part_of_a_json_value() -> None:
    assert decode(b'{"spec": "foo"}', Path.parse("spec")) == "foo"
    assert decode(b'{"a": {"b": [1, 2, 3]}}', Path.parse("a.b.#")) == 3
    assert decode(b'[{"n": "x"}, {"n": "y"}]', Path.parse("#.n")) == ["x", "y"]
    assert decode(b'{"a": null}', Path.parse("a")) is None


@pytest.mark.parametrize(
    ("raw", "query", "message"),
    [
        (b"green", "spec", "query 'spec' needs a JSON object or array, but the value is text"),
        (b'{"other": 1}', "spec", "query 'spec' matches nothing in the value"),
        (b"{not json}", None, "the value looks like JSON but does not parse: Expecting"),
        (b'{"a": NaN}', None, "the value looks like JSON but does not parse: NaN is not JSON"),
    ],
)
def test_values_that_cannot_become_data(raw: bytes, query: str | None, message: str) -> None:
    path = Path.parse(query) if query else None
    with pytest.raises(UnusableValue) as caught:
        decode(raw, path)
    assert str(caught.value).startswith(message)


def test_a_new_value_is_a_change() -> None:
    change, seen = judge(Seen(), Read("green", 3))
    assert change is Change.PUT
    assert seen == Seen("green", 3)
    change, seen = judge(seen, Read("blue", 4))
    assert (change, seen) == (Change.PUT, Seen("blue", 4))


def test_the_same_value_is_no_change() -> None:
    change, seen = judge(Seen("green", 3), Read("green", 3))
    assert (change, seen) == (Change.NONE, Seen("green", 3))
    # a restart: the value the machine held is seeded with no revision; the same value again
    # is not news, even written again meanwhile
    change, seen = judge(Seen({"a": [1, 2]}), Read({"a": [1, 2]}, 9))
    assert (change, seen) == (Change.NONE, Seen({"a": [1, 2]}, 9))


def test_deleting_a_key_that_had_a_value_is_a_change_once() -> None:
    change, seen = judge(Seen("green", 3), None)
    assert (change, seen) == (Change.DELETED, Seen())
    assert judge(seen, None) == (Change.NONE, Seen())
    assert judge(Seen(), None) == (Change.NONE, Seen())  # never there: nothing happened


def test_on_matching_update_fires_for_a_newer_revision_of_the_same_value() -> None:
    change, seen = judge(Seen("green", 3), Read("green", 4), on_matching_update=True)
    assert (change, seen) == (Change.MATCHING_UPDATE, Seen("green", 4))
    assert judge(seen, Read("green", 4), on_matching_update=True)[0] is Change.NONE
    # not on the first read after a start (no revision seen yet in this run), as Choria
    assert judge(Seen("green"), Read("green", 4), on_matching_update=True)[0] is Change.NONE


def test_on_successful_get_fires_on_every_read() -> None:
    assert judge(Seen("green", 3), Read("green", 3), on_successful_get=True)[0] is Change.GET
    assert judge(Seen(), None, on_successful_get=True)[0] is Change.NONE  # a miss is no get


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ({"a": 1}, {"a": 1.0}, True),  # JSON numbers, as Go decodes them
        ({"a": True}, {"a": 1}, False),
        ([1, 2], [1, 2], True),
        ([1, 2], [2, 1], False),
        ("1", 1, False),
        ({"a": [1]}, {"a": [1], "b": None}, False),
        ([], {}, False),
        (None, None, True),
    ],
)
def test_same_is_json_equality(a: Any, b: Any, expected: bool) -> None:
    assert same(a, b) is expected


def test_missing_is_not_a_value() -> None:
    assert Seen().value is MISSING
    assert judge(Seen(), Read(None, 1))[0] is Change.PUT  # a JSON null is a value
