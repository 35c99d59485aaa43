"""Watcher types by name. Passed in, never global: tests build registries with fakes.

The types steward ships are named here with their module (``SHIPPED``) and imported when a
machine first uses one: a daemon running exec and timer watchers never loads the docker,
expression, archive, health … modules and what they import (~2.6 MiB of its RSS).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from steward.watchers.base import Watcher

# type name -> "module:class"
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
        watcher_type = self._types.get(name)
        where = self._lazy.get(name) if watcher_type is None else None
        if where is not None:  # the loader's thread and the loop may both get here: harmless
            watcher_type = self._types[name] = _load(name, where)
        return watcher_type

    def names(self) -> list[str]:
        return sorted({*self._types, *self._lazy})


def _load(name: str, where: str) -> type[Watcher]:
    module, _, attr = where.partition(":")
    watcher_type: type[Watcher] = getattr(importlib.import_module(module), attr)
    if name != watcher_type.TYPE:
        raise ValueError(f"{where} is watcher type {watcher_type.TYPE!r}, not {name!r}")
    return watcher_type


def default_registry() -> WatcherRegistry:
    """The watcher types steward ships, each imported on first use."""
    return WatcherRegistry(lazy=SHIPPED)
