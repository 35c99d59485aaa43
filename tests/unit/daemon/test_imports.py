"""What the daemon's modules leave out (each a part of its RSS; issue 19): checked in a fresh
interpreter, since the test process has long imported all of them."""

from __future__ import annotations

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
]


def test_the_daemon_loads_none_of_what_it_does_not_use() -> None:
    code = f"""
        import sys
        import steward.cmd.main
        import steward.daemon.server
        import steward.watchers.exec
        import steward.watchers.timer
        print(*[name for name in {LEFT_OUT!r} if name in sys.modules] or ["none"])
    """
    stdout = run_fresh(code)
    assert stdout.split() == ["none"]
