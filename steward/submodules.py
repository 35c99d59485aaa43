"""Import some modules of a package without running the package's ``__init__``.

Some packages' ``__init__`` imports everything they have, for the convenience of
``from package import name``: prometheus_client's imports its HTTP servers and push-gateway
client (http.server, wsgiref, urllib.request, email: ~2 MiB of a daemon's RSS), which the
daemon never uses. ``import_submodules`` imports only the modules asked for, with a bare stand-in
for the package (its ``__path__`` alone) in ``sys.modules`` while they import, removed at
once: the modules stay in ``sys.modules`` under their own names, so ``from package.module
import name`` finds them, and a later ``import package`` runs the real ``__init__``, which
binds these same modules (one class per name, whoever imported it first).

If the package is already imported, its modules are imported the ordinary way.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterable


def import_submodules(package: str, modules: Iterable[str]) -> None:
    """Import ``package.<module>`` for each of ``modules`` (see the module's docstring)."""
    names = [f"{package}.{module}" for module in modules]
    if package in sys.modules or all(name in sys.modules for name in names):
        for name in names:
            importlib.import_module(name)
        return
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"no package named {package!r}", name=package)
    stand_in = types.ModuleType(package)
    stand_in.__path__ = list(spec.submodule_search_locations)
    stand_in.__package__ = package
    sys.modules[package] = stand_in
    try:
        for name in names:
            importlib.import_module(name)
    finally:
        if sys.modules.get(package) is stand_in:
            del sys.modules[package]
