"""Fixtures for the end-to-end tests: a machines dir and a real daemon that always dies."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, MachinesDir, base_env


@pytest.fixture
def machines(tmp_path: Path) -> MachinesDir:
    return MachinesDir(tmp_path / "machines")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # tmp_path can be too long for a Unix socket path (< 108 bytes); /tmp/st-XXXX is not
    path = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(tmp_path: Path, machines: MachinesDir, state_dir: Path) -> Iterator[Daemon]:
    """A daemon on ``machines`` and ``state_dir``, not yet started: write machines, then start."""
    config = tmp_path / "steward.yaml"
    config.write_text("")
    d = Daemon(machines.path, state_dir, tmp_path / "daemon.log", base_env(config))
    try:
        yield d
    finally:
        d.cleanup()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, attach the daemon's log to the report."""
    report = yield
    d = getattr(item, "funcargs", {}).get("daemon")
    if report.failed and isinstance(d, Daemon):
        report.sections.append(("daemon log", d.log_tail(200)))
    return report
