"""The GJSON path subset, on GJSON's own README document."""

from __future__ import annotations

from typing import Any

import pytest

from steward.gjson import Path, PathError, get

DOC: dict[str, Any] = {
    "name": {"first": "Tom", "last": "Anderson"},
    "age": 37,
    "children": ["Sara", "Alex", "Jack"],
    "fav.movie": "Deer Hunter",
    "friends": [
        {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
        {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
        {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]},
    ],
    "flag": False,
    "nothing": None,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("name.last", "Anderson"),
        ("age", 37),
        ("children", ["Sara", "Alex", "Jack"]),
        ("children.#", 3),
        ("children.1", "Alex"),
        ("child*.2", "Jack"),
        ("c?ildren.0", "Sara"),
        ("fav\\.movie", "Deer Hunter"),
        ("friends.#.first", ["Dale", "Roger", "Jane"]),
        ("friends.1.last", "Craig"),
        ("friends.#.nets.0", ["ig", "fb", "ig"]),
        ("flag", False),
        ("nothing", None),
    ],
)
def test_paths_from_the_gjson_readme(path: str, expected: Any) -> None:
    assert get(DOC, path) == (True, expected)


@pytest.mark.parametrize("path", ["name.middle", "children.3", "age.x", "friends.x", "x*y"])
def test_missing_is_not_found(path: str) -> None:
    assert get(DOC, path) == (False, None)


@pytest.mark.parametrize(
    "path",
    ['friends.#(last=="Murphy").first', "children|@reverse", "@this", "a..b", ".a", "a.", "a\\"],
)
def test_what_the_subset_does_not_do_is_refused_when_parsed(path: str) -> None:
    with pytest.raises(PathError):
        Path.parse(path)
