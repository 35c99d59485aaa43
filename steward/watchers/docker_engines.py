"""The daemon's Docker engines, one per ``docker_host``, each made on first use.

Apart from ``docker_engine`` (the engine itself: its client, calls and event stream) so that
a daemon whose machines have no docker watcher never imports that module (~0.1 MiB of its
RSS; issue 19): every watcher context holds a ``DockerEngines``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steward.watchers.docker_engine import Engine


class DockerEngines:
    """The daemon's engines, one per ``docker_host``, each made on first use."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}

    def get(self, host: str) -> Engine:
        """The engine for ``host`` (on the running loop, which its stream reports to)."""
        engine = self._engines.get(host)
        if engine is None:
            from steward.watchers.docker_engine import Engine

            engine = self._engines[host] = Engine(host, asyncio.get_running_loop())
        return engine
