"""plugins: keep the machines a signed specification in the machine's data lists (Choria's
``plugins`` watcher; ``machines`` is its older sibling, see ``machines.py``).

Each check reads the specification from the data item (a kv watcher put it there), verifies
its ed25519 signature against ``public_key`` (a spec that is unsigned, badly signed or
unreadable is dropped from the data and reported as an error; nothing changes on disk),
evaluates each entry's ``match`` against the node, writes ``<prefix>_<name>/machine.yaml`` in
the machines directory for each matching entry (a machine whose ``archive`` watcher keeps the
entry's archive in ``<plugins_directory>/<name>``) and, with ``purge_unknown``, removes managed
machines the spec no longer lists. The daemon's hot reload starts, replaces and stops them.
Success when something was written or removed, unchanged otherwise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from steward.expressions import ExpressionError
from steward.fleet import install, matcher
from steward.fleet.spec import Format, SpecError, decode
from steward.machine.durations import format_duration
from steward.machine.source import Fields
from steward.templates import TemplateError
from steward.watchers.base import Outcome, Watcher, WatcherResult

TYPE = "plugins"
DEFAULT_MANAGE_INTERVAL = 120.0  # Choria: 2m


@dataclass(frozen=True)
class PluginsProperties:
    data_item: str
    purge_unknown: bool = False
    manage_interval: float = DEFAULT_MANAGE_INTERVAL
    public_key: str = ""  # hex ed25519; "" accepts unsigned specifications (as Choria)
    directory: str = ""  # plugins_directory: where archives go; "" the machines directory
    prefix: str = "mm"  # manager_machine_prefix

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        return cls._parse(fields, prefix_key="manager_machine_prefix")

    @classmethod
    def _parse(cls, fields: Fields, *, prefix_key: str | None) -> Self:
        data_item = fields.string("data_item", required=True) or ""
        interval = DEFAULT_MANAGE_INTERVAL
        # Choria's plugins watcher reads plugin_manage_interval; its manager machines set
        # machine_manage_interval (which Choria then ignores): steward honours either
        for key in ("plugin_manage_interval", "machine_manage_interval"):
            value = fields.duration(key, minimum=1)
            if value:
                interval = value
        public_key = fields.string("public_key", non_empty=False) or ""
        if public_key.strip():
            try:
                if len(bytes.fromhex(public_key.strip())) != 32:
                    fields.error("public_key", "must be 32 bytes of hex (an ed25519 public key)")
            except ValueError:
                fields.error("public_key", "must be hex (an ed25519 public key)")
        prefix = "mm"
        if prefix_key is not None:
            prefix = fields.string(prefix_key, non_empty=False) or "mm"
            if "_" in prefix or "/" in prefix:
                fields.error(prefix_key, "may not contain '_' or '/'")
        props = cls(
            data_item=data_item,
            purge_unknown=fields.boolean("purge_unknown", False),
            manage_interval=interval,
            public_key=public_key.strip(),
            directory=(fields.string("plugins_directory") or "") if prefix_key else "",
            prefix=prefix,
        )
        fields.finish(f" in {cls.watcher_type()} properties")
        return props

    @staticmethod
    def watcher_type() -> str:
        return TYPE


class PluginsWatcher(Watcher):
    TYPE = TYPE
    Properties = PluginsProperties
    FORMAT: ClassVar[Format] = Format.PLUGINS

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._managed: list[str] = []

    @property
    def props(self) -> PluginsProperties:
        p = self.spec.properties
        assert isinstance(p, PluginsProperties)
        return p

    def layout(self) -> install.Layout:
        machines_dir = self.context.machines_dir or self.machine.directory.parent
        target = Path(self.props.directory) if self.props.directory else machines_dir
        return install.Layout(
            machines_dir, target, self.props.prefix, format_duration(self.props.manage_interval)
        )

    def data_changed(self, keys: frozenset[str]) -> None:
        if self.props.data_item in keys:
            self.wake()  # a new specification (the kv watcher put it): act on it now

    async def check(self) -> WatcherResult:
        props = self.props
        data = self.machine.data_snapshot()
        if props.data_item not in data:
            return self._result(Outcome.ERROR, f"data item {props.data_item} not present")
        try:
            spec = decode(data[props.data_item], self.FORMAT)
            key = self.context.signing_key or props.public_key  # the config's wins
            if key:
                spec.verify(key)
            entries = spec.entries()
        except SpecError as exc:
            return self._result(
                Outcome.ERROR,
                f"dropped the specification in {props.data_item}: {exc}",
                dropped=True,
            )
        identity, facts = self.context.node.name, self.context.node.facts.current
        layout = self.layout()
        return await asyncio.to_thread(self._apply, entries, identity, facts, layout)

    def _apply(
        self, entries: list[Any], identity: str, facts: Any, layout: install.Layout
    ) -> WatcherResult:
        wanted: list[tuple[Any, bytes]] = []
        problems: list[str] = []
        for entry in entries:
            try:
                if not matcher.matches(entry.match, identity, facts):
                    continue
                wanted.append((entry, install.render(entry, layout)))
            except (ExpressionError, TemplateError) as exc:
                problems.append(f"{entry.name}: {exc}")  # Choria: skipped, not purged
        self._managed = [e.name for e, _ in wanted]
        keep = {e.name for e, _ in wanted}
        changes = install.reconcile(wanted, layout, purge=self.props.purge_unknown, keep=keep)
        problems += changes.failed
        payload = {
            "managed": self._managed,
            "written": changes.written,
            "purged": changes.purged,
            "problems": problems,
        }
        parts = [f"wrote {', '.join(changes.written)}"] if changes.written else []
        parts += [f"purged {', '.join(changes.purged)}"] if changes.purged else []
        parts += problems
        if changes.changed:
            return WatcherResult(Outcome.SUCCESS, "; ".join(parts), payload=payload)
        detail = "; ".join(parts) or f"{len(wanted)} managed machines as specified"
        return WatcherResult(Outcome.UNCHANGED, detail, payload=payload)

    def _result(self, outcome: Outcome, detail: str, *, dropped: bool = False) -> WatcherResult:
        payload = {"managed": self._managed, "written": [], "purged": [], "problems": [detail]}
        removed = (self.props.data_item,) if dropped else ()
        return WatcherResult(outcome, detail, data_removed=removed, payload=payload)
