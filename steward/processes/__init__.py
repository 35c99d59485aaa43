"""Commands the watchers run: spawning, process groups, output caps, the minimal
environment, killing whole trees, and which machine a process belongs to.

What a command is (``command``: its program, environment and result) and the process tree
are imported with the package; running one (``run``, ``table``: asyncio) when first named, so
``steward validate`` loads the watcher types that run commands without an event loop. (The
function ``owners`` stays eager: its module has the same name, and importing the module would
put it in the function's place.)
"""

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from steward.processes.command import (
    DEFAULT_PATH,
    ProcessRun,
    first_line,
    minimal_environment,
    resolve_program,
)
from steward.processes.owners import INSTANCE_VAR, instance_tag, owners
from steward.processes.tree import ProcStat, kill_tree, process_table

if TYPE_CHECKING:
    from steward.processes.run import run_process
    from steward.processes.table import MachineProcesses, ProcessTable

_LAZY = MappingProxyType(  # name -> the module that defines it, imported on first use
    {
        "run_process": "steward.processes.run",
        "MachineProcesses": "steward.processes.table",
        "ProcessTable": "steward.processes.table",
    }
)

__all__ = [
    "DEFAULT_PATH",
    "INSTANCE_VAR",
    "MachineProcesses",
    "ProcStat",
    "ProcessRun",
    "ProcessTable",
    "first_line",
    "instance_tag",
    "kill_tree",
    "minimal_environment",
    "owners",
    "process_table",
    "resolve_program",
    "run_process",
]


def __getattr__(name: str) -> Any:
    """The names that need asyncio, from their module when first asked for (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
