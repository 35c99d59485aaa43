"""nats-py imported without aiohttp unless a server is ws:// or wss:// (each case in a fresh
interpreter: the test process has long imported both)."""

from __future__ import annotations

import pytest

from steward.broker.nats_import import needs_websocket
from tests.support.fresh import run_fresh


def fresh(code: str) -> list[str]:
    return run_fresh(code).split()


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        (["nats://a:4222", "tls://b:4222", "c:4222"], False),
        (["nats://a:4222", "ws://b:8080"], True),
        ([" WSS://b:443"], True),
        ([], False),
    ],
)
def test_needs_websocket(servers: list[str], expected: bool) -> None:
    assert needs_websocket(servers) is expected


def test_nats_without_websocket_servers_leaves_aiohttp_unloaded_but_importable() -> None:
    assert fresh(
        """
        import sys
        from steward.broker.nats_import import import_nats
        import_nats(["nats://127.0.0.1:4222"])
        import nats.aio.transport as transport
        print("nats" in sys.modules, "aiohttp" in sys.modules, transport.aiohttp is None)
        import aiohttp  # the stand-in is gone: a probe or a fetch can still load it
        print(sys.modules["aiohttp"] is aiohttp)
        """
    ) == ["True", "False", "True", "True"]


def test_a_websocket_server_gives_nats_py_aiohttp_even_after_it_loaded_without() -> None:
    assert fresh(
        """
        from steward.broker.nats_import import import_nats
        import nats.aio.transport as transport
        import_nats(["wss://127.0.0.1:443"])
        print(transport.aiohttp.__name__, transport.multidict.__name__)
        """
    ) == ["aiohttp", "multidict"]
    assert fresh(
        """
        from steward.broker.nats_import import import_nats
        import_nats(["nats://127.0.0.1:4222"])
        import nats.aio.transport as transport
        import_nats(["ws://127.0.0.1:8080"])
        print(transport.aiohttp.__name__, transport.multidict.__name__)
        """
    ) == ["aiohttp", "multidict"]


def test_the_daemon_imports_neither_nats_nor_aiohttp_until_nats_is_configured() -> None:
    assert fresh(
        """
        import sys
        import steward.cmd.main, steward.daemon.server
        print(sorted({m.split(".")[0] for m in sys.modules} & {"nats", "aiohttp"}))
        """
    ) == ["[]"]
