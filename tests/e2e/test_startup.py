"""A daemon that cannot start says why in one line and exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.daemon import Daemon

pytestmark = pytest.mark.e2e


def _refused(daemon: Daemon) -> str:
    proc = daemon.spawn()
    try:
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = daemon.log_text().strip()
    assert code == 1, out
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1, out
    assert out.startswith("steward: error: "), out
    return out


def test_missing_machines_dir(daemon: Daemon, tmp_path: Path) -> None:
    daemon.machines_dir = tmp_path / "nowhere"
    assert "machines directory" in _refused(daemon)
    assert "nowhere" in daemon.log_text()


def test_socket_path_too_long(daemon: Daemon, state_dir: Path) -> None:
    daemon.state_dir = state_dir / ("x" * 100)
    message = _refused(daemon)
    assert "steward.sock" in message
    assert "107 bytes" in message
