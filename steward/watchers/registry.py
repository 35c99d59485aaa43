"""Watcher types by name. Passed in, never global: tests build registries with fakes.

The default registry names every type steward ships with the module that holds it, and
imports a type's module the first time that type is asked for: ``steward validate`` of
exec and timer machines does not load the archive, docker or kv watchers (nor their
imports), and neither does a daemon that runs none.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steward.watchers.base import Watcher

# type name -> "module:class", in the order they are documented
SHIPPED: Mapping[str, str] = MappingProxyType(
    {
        "exec": "steward.watchers.exec:ExecWatcher",
        "timer": "steward.watchers.timer:TimerWatcher",
        "file": "steward.watchers.file:FileWatcher",
        "health": "steward.watchers.health:HealthWatcher",
        "nagios": "steward.watchers.nagios:NagiosWatcher",
        "schedule": "steward.watchers.schedule:ScheduleWatcher",
        "docker": "steward.watchers.docker:DockerWatcher",
        "gossip": "steward.watchers.gossip:GossipWatcher",
        "metric": "steward.watchers.metric:MetricWatcher",
        "expression": "steward.watchers.expression:ExpressionWatcher",
        "kv": "steward.watchers.kv:KvWatcher",
        "archive": "steward.watchers.archive:ArchiveWatcher",
        "machines": "steward.watchers.machines:MachinesWatcher",
        "plugins": "steward.watchers.plugins:PluginsWatcher",
    }
)


class WatcherRegistry:
    def __init__(
        self, types: Iterable[type[Watcher]] = (), *, lazy: Mapping[str, str] | None = None
    ) -> None:
        self._types: dict[str, type[Watcher]] = {}
        self._lazy: dict[str, str] = dict(lazy or {})  # name -> "module:class", loaded on get
        for t in types:
            self.register(t)

    def register(self, watcher_type: type[Watcher]) -> None:
        name = watcher_type.TYPE
        if name in self._types or name in self._lazy:
            raise ValueError(f"watcher type {name!r} is already registered")
        self._types[name] = watcher_type

    def get(self, name: str) -> type[Watcher] | None:
        found = self._types.get(name)
        if found is None and name in self._lazy:  # nothing removed: safe from two threads
            found = self._types.setdefault(name, _load(name, self._lazy[name]))
        return found

    def names(self) -> list[str]:
        return sorted({*self._types, *self._lazy})


def _load(name: str, where: str) -> type[Watcher]:
    module, _, attribute = where.partition(":")
    watcher_type: type[Watcher] = getattr(importlib.import_module(module), attribute)
    if name != watcher_type.TYPE:
        raise ValueError(f"{where} is watcher type {watcher_type.TYPE!r}, registered as {name!r}")
    return watcher_type


def default_registry() -> WatcherRegistry:
    """The watcher types steward ships, each loaded when first asked for."""
    return WatcherRegistry(lazy=SHIPPED)
