"""Read a machines directory into validated specs, through the one validation path."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from steward.errors import Problem, Severity, SpecError
from steward.machine.discovery import MACHINE_FILE, MachineSource, discover
from steward.machine.permissions import permission_problems
from steward.machine.spec import MachineSpec
from steward.machine.validate import check_references, parse_machine, read_machine
from steward.watchers.registry import WatcherRegistry


@dataclass
class LoadReport:
    """The valid machines found, and every problem (errors reject a machine; warnings don't)."""

    specs: list[MachineSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rejected: list[Path] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)  # shown file -> sha256 of its bytes

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]


class SpecCache:
    """The last parse of each machine file, by checksum: a rescan re-parses only what changed.

    A parse depends only on the file's bytes, its path and its directory (the registry is the
    daemon's and fixed), so a hit gives exactly what parsing again would. Not thread-safe: one
    load at a time (the daemon never runs two rescans at once).
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[Path, Path, str], tuple[str, MachineSpec | SpecError]] = {}
        self._used: set[tuple[Path, Path, str]] = set()

    def parse(
        self,
        raw: bytes,
        checksum: str,
        registry: WatcherRegistry,
        *,
        file: str,
        path: Path,
        directory: Path,
    ) -> MachineSpec:
        """``parse_machine``, or its remembered result for these bytes. Raises SpecError."""
        key = (path, directory, file)
        entry = self._entries.get(key)
        if entry is None or entry[0] != checksum:
            try:
                result: MachineSpec | SpecError = parse_machine(
                    raw, registry, file=file, path=path, directory=directory
                )
            except SpecError as exc:
                result = exc
            entry = self._entries[key] = (checksum, result)
        self._used.add(key)
        if isinstance(entry[1], SpecError):
            raise SpecError(entry[1].problems)  # a fresh one: a raised error keeps its traceback
        return entry[1]

    def sweep(self) -> None:
        """Forget the files not parsed since the last sweep (machines that went away)."""
        self._entries = {k: v for k, v in self._entries.items() if k in self._used}
        self._used = set()


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
    cache: SpecCache | None = None,
) -> LoadReport:
    """Validate each source; then cross-check them with each other and ``also_known``.

    A machine whose own file is invalid, or whose references to other machines are wrong, or
    whose name duplicates an earlier one, is rejected; the others are returned. With a
    ``cache`` (kept across calls), only files whose bytes changed are parsed again.
    """
    report = LoadReport()
    specs = cache if cache is not None else SpecCache()
    loaded: list[MachineSpec] = []
    for src in sources:
        shown = display_path(src.path, base)
        if check_permissions:
            dir_machine = src.path.name == MACHINE_FILE
            refused = permission_problems(src.path, shown, src.directory if dir_machine else None)
            if refused:
                report.problems.extend(refused)
                report.rejected.append(src.path)
                continue
        try:
            raw = read_machine(src.path, shown)
            checksum = report.checksums[shown] = hashlib.sha256(raw).hexdigest()
            loaded.append(
                specs.parse(
                    raw, checksum, registry, file=shown, path=src.path, directory=src.directory
                )
            )
        except SpecError as exc:
            report.problems.extend(exc.problems)
            report.rejected.append(src.path)
    specs.sweep()
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
    machines_dir: Path,
    registry: WatcherRegistry,
    *,
    check_permissions: bool = True,
    cache: SpecCache | None = None,
) -> LoadReport:
    """Every machine in the directory. Raises OSError if the directory cannot be listed."""
    return load_sources(
        discover(machines_dir),
        registry,
        base=machines_dir,
        check_permissions=check_permissions,
        cache=cache,
    )
