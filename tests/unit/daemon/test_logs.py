"""Log lines carry their syslog priority when stderr is the journal, and only then."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from steward.daemon.logs import is_journal, setup_logging


@pytest.fixture(autouse=True)
def root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[TextIO]:
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as f:
        yield f


def journal_env(stream: TextIO) -> dict[str, str]:
    st = os.fstat(stream.fileno())
    return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


def log_each_level() -> None:
    log = logging.getLogger("steward.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e", extra={"machine": "web"})
    log.critical("c")


def written(stream: TextIO) -> list[str]:
    stream.flush()
    stream.seek(0)
    return stream.read().splitlines()


def test_json_lines_carry_their_priority_in_the_journal(stream: TextIO) -> None:
    setup_logging("json", "debug", stream=stream, environ=journal_env(stream))
    log_each_level()
    lines = written(stream)
    assert [line[:3] for line in lines] == ["<7>", "<6>", "<4>", "<3>", "<3>"]
    records = [json.loads(line[3:]) for line in lines]
    assert [r["msg"] for r in records] == ["d", "i", "w", "e", "c"]
    assert records[3]["machine"] == "web"


def test_text_lines_carry_it_too_on_every_line_of_a_traceback(stream: TextIO) -> None:
    setup_logging("text", "info", stream=stream, environ=journal_env(stream))
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("steward.test").exception("failed")
    lines = written(stream)
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines), lines
    assert "failed" in lines[0] and "RuntimeError: boom" in lines[-1]


def test_no_prefix_without_journal_stream(stream: TextIO) -> None:
    setup_logging("json", "debug", stream=stream, environ={})
    log_each_level()
    assert all(line.startswith("{") for line in written(stream))


def test_no_prefix_when_the_variable_names_another_stream(stream: TextIO, tmp_path: Path) -> None:
    # a child of a journald-connected service that inherited the variable but logs elsewhere
    with open(tmp_path / "other", "w") as other:
        setup_logging("json", "info", stream=stream, environ=journal_env(other))
        logging.getLogger("steward.test").error("e")
    assert written(stream)[0].startswith("{")


@pytest.mark.parametrize("value", ["", "1:2", "x:y", "12", ":"])
def test_is_journal_is_false_for_anything_else(stream: TextIO, value: str) -> None:
    assert not is_journal(stream, {"JOURNAL_STREAM": value})
    assert is_journal(stream, journal_env(stream))
