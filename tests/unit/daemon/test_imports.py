"""What the daemon's modules leave out (each a part of its RSS; issue 19): checked in a fresh
interpreter, since the test process has long imported all of them."""

from __future__ import annotations

from pathlib import Path

from tests.support.fresh import run_fresh

LEFT_OUT = [
    "prometheus_client",  # the package's __init__: http.server, wsgiref, urllib.request, email
    "http.server",
    "wsgiref",
    "email",
    "urllib.request",
    "watchfiles",  # its Rust notifier and threads; the package's __init__: anyio
    "watchfiles._rust_notify",
    "anyio",
    "multiprocessing",
    "cloudevents",  # the SDK: dateutil (its parser, tz, zoneinfo)
    "dateutil",
    "decimal",  # only float formatting needs it
    "aiohttp",  # nats-py's websocket transport only
    "nats",  # only when NATS is configured
    "steward.watchers.metric",  # only when a machine has a metric watcher
    "shutil",  # bz2, lzma and their libraries: rmtree only when a killed daemon left files
    "tempfile",  # shutil, for mkstemp: files.create_new
    "bz2",
    "lzma",
    "uuid",  # its _uuid extension and libuuid, for event ids: steward.ids
    "steward.watchers.docker_engine",  # only when a machine has a docker watcher
    "steward.fleet",  # the fleet reporter: only with NATS
]


def test_the_daemon_loads_none_of_what_it_does_not_use(tmp_path: Path) -> None:
    code = f"""
        import sys
        from pathlib import Path
        import steward.cmd.main
        import steward.daemon.server
        import steward.watchers.exec
        import steward.watchers.timer
        from steward.processes.command import resolve_program
        from steward.watchers.exec import DataFile
        from steward.daemon.server import _fresh_tmp
        tmp = _fresh_tmp(Path(sys.argv[1]) / "tmp")  # at start
        DataFile(tmp, "m-w").update({{"a": 1}})  # an exec watcher's $WATCHER_DATA
        resolve_program("sh", tmp, "/bin:/usr/bin")  # a command named without a path
        print(*[name for name in {LEFT_OUT!r} if name in sys.modules] or ["none"])
    """
    stdout = run_fresh(code, str(tmp_path))
    assert stdout.split() == ["none"]
