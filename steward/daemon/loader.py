"""Read a machines directory into validated specs, through the one validation path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from steward.errors import Problem, Severity, SpecError
from steward.machine.discovery import MACHINE_FILE, MachineSource, discover
from steward.machine.permissions import permission_problems
from steward.machine.spec import MachineSpec
from steward.machine.validate import check_references, load_machine
from steward.watchers.registry import WatcherRegistry


@dataclass
class LoadReport:
    """The valid machines found, and every problem (errors reject a machine; warnings don't)."""

    specs: list[MachineSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rejected: list[Path] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]


def display_path(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    return str(path)


def load_sources(
    sources: Iterable[MachineSource],
    registry: WatcherRegistry,
    *,
    base: Path | None = None,
    also_known: Iterable[MachineSpec] = (),
    check_permissions: bool = True,
) -> LoadReport:
    """Validate each source; then cross-check them with each other and ``also_known``.

    A machine whose own file is invalid, or whose references to other machines are wrong, or
    whose name duplicates an earlier one, is rejected; the others are returned.
    """
    report = LoadReport()
    loaded: list[MachineSpec] = []
    for src in sources:
        if check_permissions:
            shown = display_path(src.path, base)
            dir_machine = src.path.name == MACHINE_FILE
            refused = permission_problems(src.path, shown, src.directory if dir_machine else None)
            if refused:
                report.problems.extend(refused)
                report.rejected.append(src.path)
                continue
        try:
            loaded.append(
                load_machine(
                    src.path,
                    registry,
                    display=display_path(src.path, base),
                    directory=src.directory,
                )
            )
        except SpecError as exc:
            report.problems.extend(exc.problems)
            report.rejected.append(src.path)
    known = list(also_known)
    known_names = {s.name for s in known}
    loaded_files = {display_path(s.path, base) for s in loaded}
    for problem in check_references([*known, *loaded]):
        if problem.file in loaded_files:
            report.problems.append(problem)
    bad_files = {p.file for p in report.problems if p.severity is Severity.ERROR}
    for spec in loaded:
        shown = display_path(spec.path, base)
        if shown in bad_files or spec.name in known_names:
            report.rejected.append(spec.path)
        else:
            report.specs.append(spec)
    return report


def load_directory(
    machines_dir: Path, registry: WatcherRegistry, *, check_permissions: bool = True
) -> LoadReport:
    """Every machine in the directory. Raises OSError if the directory cannot be listed."""
    return load_sources(
        discover(machines_dir), registry, base=machines_dir, check_permissions=check_permissions
    )
