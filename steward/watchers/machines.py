"""machines: Choria's older ``machines`` watcher, the same work as ``plugins`` with its
specification format (``{"machines": <base64>, "signature": <hex over the decoded JSON>}``),
a fixed ``mm`` prefix and archives extracted into the machines directory."""

from __future__ import annotations

from typing import Self

from steward.fleet.spec import Format
from steward.machine.source import Fields
from steward.watchers.plugins import PluginsProperties, PluginsWatcher

TYPE = "machines"


class MachinesProperties(PluginsProperties):
    @classmethod
    def parse(cls, fields: Fields) -> Self:
        return cls._parse(fields, prefix_key=None)

    @staticmethod
    def watcher_type() -> str:
        return TYPE


class MachinesWatcher(PluginsWatcher):
    TYPE = TYPE
    Properties = MachinesProperties
    FORMAT = Format.MACHINES
