"""Read a machines directory into validated specs, through the one validation path."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from steward.errors import Problem, Severity, SpecError
from steward.machine.discovery import MACHINE_FILE, MachineSource, discover
from steward.machine.permissions import permission_problems, stat_or_none
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
    """The last parse of each machine file: a rescan re-reads only what changed on disk, and
    re-parses only what changed in content.

    A parse depends only on the file's bytes, its path and its directory (the registry is the
    daemon's and fixed), so a hit gives exactly what parsing again would. A file whose inode,
    size, mtime and ctime are all as last seen is not read again (ctime cannot be set back by
    a program, so a rewrite always shows). Not thread-safe: one load at a time (the daemon
    never runs two rescans at once).
    """

    def __init__(self) -> None:
        # keyed by the paths' text: a Path hashes its parts (slow at 10,000 machines a rescan)
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._used: set[tuple[str, str, str]] = set()

    def parse(
        self,
        registry: WatcherRegistry,
        *,
        file: str,
        path: Path,
        directory: Path,
        stamp: Stamp | None = None,
    ) -> tuple[str | None, MachineSpec | SpecError]:
        """The file's checksum (None if it cannot be read) and ``parse_machine``'s result: the
        spec, or the SpecError with every problem (remembered, not raised)."""
        key = (str(path), str(directory), file)
        self._used.add(key)
        entry = self._entries.get(key)
        if entry is None or stamp is None or entry.stamp != stamp:
            try:
                raw = read_machine(path, file)
            except SpecError as exc:
                self._entries.pop(key, None)
                return None, exc
            checksum = hashlib.sha256(raw).hexdigest()
            if entry is None or entry.checksum != checksum:
                try:
                    result: MachineSpec | SpecError = parse_machine(
                        raw,
                        registry,
                        file=file,
                        path=path,
                        directory=directory,
                        checksum=checksum,
                    )
                except SpecError as exc:
                    result = exc
                entry = _Entry(checksum, result, stamp)
            else:
                entry = _Entry(checksum, entry.result, stamp)
            self._entries[key] = entry
        return entry.checksum, entry.result

    def sweep(self) -> None:
        """Forget the files not parsed since the last sweep (machines that went away)."""
        self._entries = {k: v for k, v in self._entries.items() if k in self._used}
        self._used = set()


Stamp = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns


@dataclass(frozen=True)
class _Entry:
    checksum: str
    result: MachineSpec | SpecError
    stamp: Stamp | None


def file_stamp(st: os.stat_result | None) -> Stamp | None:
    if st is None:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def display_path(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` if it is under it (as ``Path.relative_to``), else whole."""
    text = str(path)
    if base is not None:
        prefix = str(base).rstrip("/") + "/"
        if text.startswith(prefix) and len(text) > len(prefix):  # the usual case, cheaply
            return text[len(prefix) :]
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    return text


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
    loaded: list[tuple[str, MachineSpec]] = []
    for src in sources:
        shown = display_path(src.path, base)
        st = src.stat if src.stat is not None else stat_or_none(src.path)
        if check_permissions:
            dir_machine = src.path.name == MACHINE_FILE
            refused = permission_problems(
                src.path, shown, src.directory if dir_machine else None, st
            )
            if refused:
                report.problems.extend(refused)
                report.rejected.append(src.path)
                continue
        checksum, result = specs.parse(
            registry,
            file=shown,
            path=src.path,
            directory=src.directory,
            stamp=file_stamp(st),
        )
        if checksum is not None:
            report.checksums[shown] = checksum
        if isinstance(result, SpecError):
            report.problems.extend(result.problems)
            report.rejected.append(src.path)
        else:
            loaded.append((shown, result))
            report.problems.extend(result.warnings)
    specs.sweep()
    known = list(also_known)
    known_names = {s.name for s in known}
    loaded_files = {shown for shown, _ in loaded}
    for problem in check_references([*known, *(spec for _, spec in loaded)]):
        if problem.file in loaded_files:
            report.problems.append(problem)
    bad_files = {p.file for p in report.problems if p.severity is Severity.ERROR}
    for shown, spec in loaded:
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
