"""Modules of a package imported without its ``__init__`` (in a fresh interpreter each: the
test process has long imported the packages whole)."""

from __future__ import annotations

import sys

import pytest

from steward.submodules import import_submodules
from tests.support.fresh import run_fresh


def fresh(code: str) -> list[str]:
    return run_fresh(code).split()


def test_the_modules_load_without_the_package_init_and_the_package_loads_later_with_them() -> None:
    assert fresh(
        """
        import sys
        from steward.submodules import import_submodules
        import_submodules("prometheus_client", ["registry", "gc_collector"])
        from prometheus_client.registry import CollectorRegistry
        print("prometheus_client" in sys.modules, "prometheus_client.exposition" in sys.modules)
        print("http.server" in sys.modules)
        import prometheus_client  # the whole package: its __init__ binds the same modules
        print(prometheus_client.CollectorRegistry is CollectorRegistry)
        print(prometheus_client.registry is sys.modules["prometheus_client.registry"])
        """
    ) == ["False", "False", "False", "True", "True"]


def test_a_package_already_imported_is_used_as_it_is() -> None:
    import prometheus_client

    import_submodules("prometheus_client", ["registry"])
    assert sys.modules["prometheus_client"] is prometheus_client


def test_no_such_package() -> None:
    with pytest.raises(ImportError, match="no package named 'steward_no_such_package'"):
        import_submodules("steward_no_such_package", ["x"])
