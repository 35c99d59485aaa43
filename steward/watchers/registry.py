"""Watcher types by name. Passed in, never global: tests build registries with fakes."""

from __future__ import annotations

from collections.abc import Iterable

from steward.watchers.base import Watcher


class WatcherRegistry:
    def __init__(self, types: Iterable[type[Watcher]] = ()) -> None:
        self._types: dict[str, type[Watcher]] = {}
        for t in types:
            self.register(t)

    def register(self, watcher_type: type[Watcher]) -> None:
        name = watcher_type.TYPE
        if name in self._types:
            raise ValueError(f"watcher type {name!r} is already registered")
        self._types[name] = watcher_type

    def get(self, name: str) -> type[Watcher] | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)


def default_registry() -> WatcherRegistry:
    """The watcher types steward ships."""
    from steward.watchers import archive as archive_watcher
    from steward.watchers import docker as docker_watcher
    from steward.watchers import exec as exec_watcher
    from steward.watchers import expression as expression_watcher
    from steward.watchers import file as file_watcher
    from steward.watchers import gossip as gossip_watcher
    from steward.watchers import health as health_watcher
    from steward.watchers import kv as kv_watcher
    from steward.watchers import machines as machines_watcher
    from steward.watchers import metric as metric_watcher
    from steward.watchers import nagios as nagios_watcher
    from steward.watchers import plugins as plugins_watcher
    from steward.watchers import schedule as schedule_watcher
    from steward.watchers import timer as timer_watcher

    return WatcherRegistry(
        [
            exec_watcher.ExecWatcher,
            timer_watcher.TimerWatcher,
            file_watcher.FileWatcher,
            health_watcher.HealthWatcher,
            nagios_watcher.NagiosWatcher,
            schedule_watcher.ScheduleWatcher,
            docker_watcher.DockerWatcher,
            gossip_watcher.GossipWatcher,
            metric_watcher.MetricWatcher,
            expression_watcher.ExpressionWatcher,
            kv_watcher.KvWatcher,
            archive_watcher.ArchiveWatcher,
            machines_watcher.MachinesWatcher,
            plugins_watcher.PluginsWatcher,
        ]
    )
