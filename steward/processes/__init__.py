"""Commands the watchers run: spawning, process groups, output caps, the minimal
environment, killing whole trees, and which machine a process belongs to."""

from steward.processes.owners import INSTANCE_VAR, instance_tag, owners
from steward.processes.run import (
    DEFAULT_PATH,
    ProcessRun,
    first_line,
    minimal_environment,
    resolve_program,
    run_process,
)
from steward.processes.table import MachineProcesses, ProcessTable
from steward.processes.tree import ProcStat, kill_tree, process_table

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
