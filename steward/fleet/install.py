"""Render each managing machine and reconcile the machines directory (blocking: a thread).

For each entry that matches the node, ``<machines_dir>/<prefix>_<name>/machine.yaml`` holds
Choria's template machine rendered for the entry: an ``archive`` watcher that downloads the
entry's source into ``<target>/<name>``. A file already as rendered is left alone; another one
is replaced atomically (a temporary file in the same directory and a rename), so the daemon's
hot reload never reads half a file. With ``purge`` every ``<prefix>_<name>`` directory the
spec no longer lists (or that no longer matches) is removed, and with it ``<target>/<name>``
— only directories with the prefix are ever touched.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from steward.files import write_atomically
from steward.fleet.spec import Entry
from steward.templates import Template

# Choria's aagent/watchers/pluginswatcher/machine.yaml, byte for byte
MACHINE_TEMPLATE = """\
name: "{{ .NamePrefix }}_{{ .Name }}"
version: 1.0.0
initial_state: MANAGE

transitions:
  - name: enter_maintenance
    from: [ MANAGE ]
    destination: MAINTENANCE

  - name: resume
    from: [ MAINTENANCE ]
    destination: MANAGE

watchers:
  - name: download
    type: archive
    interval: "{{.Interval}}"
    state_match:
      - MANAGE
    properties:
      checksum: "{{ .ArchiveChecksum }}"
      creates: "{{ .Name }}"
      governor: "{{ .Governor }}"
      password: "{{ .Password }}"
      source: "{{.Source}}"
      target: "{{ .Target }}"
      username: "{{ .Username }}"
      verify: "SHA256SUMS"
      verify_checksum: "{{ .ContentChecksumsChecksum }}"
"""


@dataclass(frozen=True)
class Layout:
    machines_dir: Path  # where managing machines are written
    target: Path  # where their archives are extracted (<target>/<name>)
    prefix: str  # "mm": directories "mm_<name>"
    interval: str  # the archive watchers' interval, as Go prints a duration


@dataclass
class Changes:
    written: list[str] = field(default_factory=list)  # entry names (new or replaced)
    purged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "name: why"

    @property
    def changed(self) -> bool:
        return bool(self.written or self.purged)


def render(entry: Entry, layout: Layout, template: Template | None = None) -> bytes:
    """The managing machine for ``entry``; TemplateError if the template fails."""
    dot = {
        "Name": entry.name,
        "NamePrefix": layout.prefix,
        "Source": entry.source,
        "Username": entry.username,
        "Password": entry.password,
        "ContentChecksumsChecksum": entry.verify_checksum,
        "ArchiveChecksum": entry.checksum,
        "Matcher": entry.match,
        "Governor": entry.governor,
        "Interval": layout.interval,
        "Target": str(layout.target),
    }
    template = template or Template.parse(MACHINE_TEMPLATE)
    return template.render({}, {}, dot=dot).encode()


def reconcile(
    wanted: Sequence[tuple[Entry, bytes]], layout: Layout, *, purge: bool, keep: set[str]
) -> Changes:
    """Write each wanted machine; with ``purge`` remove managed ones not in ``keep`` (the names
    the spec lists that match this node)."""
    changes = Changes()
    if purge:
        for name in sorted(current(layout) - keep):
            try:
                shutil.rmtree(layout.machines_dir / f"{layout.prefix}_{name}")
                managed = layout.target / name
                if managed.is_dir() and not managed.is_symlink():
                    shutil.rmtree(managed)
                changes.purged.append(name)
            except OSError as exc:
                changes.failed.append(f"{name}: cannot remove: {exc.strerror}")
    for entry, content in wanted:
        directory = layout.machines_dir / f"{layout.prefix}_{entry.name}"
        target = directory / "machine.yaml"
        try:
            if target.is_file() and target.read_bytes() == content:
                continue
            directory.mkdir(mode=0o700, exist_ok=True)
            write_atomically(target, content, mode=0o600, prefix=".steward-fleet-")
            changes.written.append(entry.name)
        except OSError as exc:
            changes.failed.append(f"{entry.name}: cannot write {target}: {exc.strerror}")
    return changes


def current(layout: Layout) -> set[str]:
    """Names of the managed machines in the machines directory (``<prefix>_<name>``)."""
    found: set[str] = set()
    try:
        children = list(layout.machines_dir.iterdir())
    except FileNotFoundError:
        return found
    for child in children:
        head, sep, name = child.name.partition("_")
        if sep and head == layout.prefix and name and child.is_dir() and not child.is_symlink():
            found.add(name)
    return found
