"""The facts file: read into the shared Facts, kept when broken, re-read only when changed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from steward.daemon.facts import FactsError, FactsFile, read_facts
from steward.watchers.context import Facts
from tests.support.fakes import FakeClock


def test_json_and_yaml_facts(tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text('{"a": 1, "b": {"c": [true, null]}}')
    assert read_facts(tmp_path / "f.json") == {"a": 1, "b": {"c": [True, None]}}
    (tmp_path / "f.yaml").write_text("a: 1\non: yes\nwhen: 2024-01-02\nlist: [x]\n")
    facts = read_facts(tmp_path / "f.yaml")
    assert facts == {"a": 1, "on": "yes", "when": "2024-01-02", "list": ["x"]}  # YAML 1.2
    assert type(facts) is dict and type(facts["list"]) is list  # plain JSON values


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("f.json", "[1, 2]", "must hold a mapping, not a list"),
        ("f.json", "{oops", "invalid facts file"),
        ("f.yaml", "", "must hold a mapping, not empty"),
        ("f.yaml", "a: [1\n", "invalid facts file"),
        ("none.json", None, "cannot read facts file"),
    ],
)
def test_bad_facts_files_say_why(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(FactsError, match=message):
        read_facts(tmp_path / name)


async def test_reload_swaps_facts_and_a_broken_file_keeps_the_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "facts.json"
    path.write_text('{"x": "one"}')
    facts = Facts()
    seen_by_a_watcher = facts  # what every watcher context holds: the same object
    clock = FakeClock()
    file = FactsFile(path, facts, clock)
    await file.refresh()
    assert dict(seen_by_a_watcher.current) == {"x": "one"}
    assert file.status() == {
        "file": str(path),
        "count": 1,
        "loaded_at": clock.time(),
        "error": None,
    }

    path.write_text("{not json")
    with caplog.at_level(logging.ERROR, "steward.facts"):
        await file.refresh()
        await file.refresh()  # the same error is logged once
    assert dict(facts.current) == {"x": "one"}  # the last good facts stay
    assert facts.error is not None and "invalid facts file" in facts.error
    assert file.status()["error"] == facts.error
    assert len([r for r in caplog.records if "invalid facts file" in r.getMessage()]) == 1

    path.write_text('{"x": "two", "y": 2}')
    await file.refresh()
    assert dict(facts.current) == {"x": "two", "y": 2}
    assert facts.error is None

    path.unlink()
    await file.refresh()
    assert facts.error is not None and "cannot read facts file" in facts.error
    assert dict(facts.current) == {"x": "two", "y": 2}


async def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text('{"x": 1}')
    facts = Facts()
    file = FactsFile(path, facts, FakeClock())
    await file.refresh()
    facts.replace({"marker": True})  # would be overwritten by a new read
    await file.refresh()
    assert dict(facts.current) == {"marker": True}
    os.utime(path, ns=(1, 1))  # a changed mtime: read again
    await file.refresh()
    assert dict(facts.current) == {"x": 1}


async def test_no_facts_file_means_empty_facts() -> None:
    facts = Facts()
    file = FactsFile(None, facts, FakeClock())
    await file.refresh()
    assert dict(facts.current) == {} and facts.error is None
    assert file.status()["file"] is None
