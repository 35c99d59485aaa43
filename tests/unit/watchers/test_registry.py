"""The registry names every shipped type and loads a type's module when it is first used."""

from __future__ import annotations

import pytest

from steward.watchers.registry import SHIPPED, WatcherRegistry, default_registry
from steward.watchers.timer import TimerWatcher
from tests.support.fresh import run_fresh


def test_every_shipped_type_loads_under_its_name() -> None:
    registry = default_registry()
    assert registry.names() == sorted(SHIPPED)
    for name in SHIPPED:
        watcher_type = registry.get(name)
        assert watcher_type is not None and name == watcher_type.TYPE
    assert registry.get("nope") is None


def test_a_type_module_is_imported_only_when_its_type_is_asked_for() -> None:
    code = (
        "import sys\n"
        "from steward.watchers.registry import default_registry\n"
        "r = default_registry()\n"
        "r.names()\n"
        "r.get('timer')\n"
        "print(sorted(m for m in sys.modules if m.startswith('steward.watchers.')"
        " and m.rsplit('.', 1)[1] in r.names()))\n"
    )
    stdout = run_fresh(code)
    assert stdout.strip() == "['steward.watchers.timer']"


def test_a_name_is_registered_once() -> None:
    registry = WatcherRegistry(lazy={"timer": "steward.watchers.timer:TimerWatcher"})
    with pytest.raises(ValueError, match="already registered"):
        registry.register(TimerWatcher)
    with pytest.raises(ValueError, match="already registered"):
        WatcherRegistry([TimerWatcher, TimerWatcher])


def test_a_lazy_entry_must_name_a_class_of_its_type() -> None:
    registry = WatcherRegistry(lazy={"exec": "steward.watchers.timer:TimerWatcher"})
    assert "exec" in registry.names()
    with pytest.raises(ValueError, match="is watcher type 'timer', registered as 'exec'"):
        registry.get("exec")
