"""discover(): which entries of a machines directory are machines."""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.machine.discovery import MachineSource, discover, sources_for

DEFINITION = "name: x\n"


def machine_dir(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir()
    (d / "machine.yaml").write_text(DEFINITION)
    return d


def test_directory_with_machine_yaml(tmp_path: Path) -> None:
    d = machine_dir(tmp_path, "web")
    (d / "check.sh").write_text("#!/bin/sh\n")
    assert discover(tmp_path) == [MachineSource(d / "machine.yaml", d)]


def test_bare_yaml_files_run_in_the_machines_dir(tmp_path: Path) -> None:
    (tmp_path / "db.yaml").write_text(DEFINITION)
    (tmp_path / "cache.yml").write_text(DEFINITION)
    assert discover(tmp_path) == [
        MachineSource(tmp_path / "cache.yml", tmp_path),
        MachineSource(tmp_path / "db.yaml", tmp_path),
    ]


def test_sorted_by_path_mixing_both_forms(tmp_path: Path) -> None:
    b = machine_dir(tmp_path, "b")
    (tmp_path / "a.yaml").write_text(DEFINITION)
    (tmp_path / "c.yaml").write_text(DEFINITION)
    assert [s.path for s in discover(tmp_path)] == [
        tmp_path / "a.yaml",
        b / "machine.yaml",
        tmp_path / "c.yaml",
    ]


@pytest.mark.parametrize(
    "name",
    [".hidden.yaml", "m.yaml.tmp", "m.yaml~", ".m.yaml.swp", "m.yaml.swp", "m-temp", "m.tmp"],
)
def test_ignored_files(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(DEFINITION)
    assert discover(tmp_path) == []


@pytest.mark.parametrize("name", [".hidden", "web.tmp", "web-temp", "web~", "web.swp"])
def test_ignored_directories(tmp_path: Path, name: str) -> None:
    machine_dir(tmp_path, name)
    assert discover(tmp_path) == []


def test_directory_without_machine_yaml_is_not_a_machine(tmp_path: Path) -> None:
    d = tmp_path / "scripts"
    d.mkdir()
    (d / "other.yaml").write_text(DEFINITION)
    assert discover(tmp_path) == []


def test_other_files_are_not_machines(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hello\n")
    (tmp_path / "data.json").write_text("{}\n")
    assert discover(tmp_path) == []


def test_only_machines_among_noise(tmp_path: Path) -> None:
    web = machine_dir(tmp_path, "web")
    (web / "machine.yaml.swp").write_text("")
    (tmp_path / "db.yaml").write_text(DEFINITION)
    (tmp_path / "db.yaml~").write_text(DEFINITION)
    (tmp_path / ".db.yaml.swp").write_text("")
    (tmp_path / "new.yaml.tmp").write_text(DEFINITION)
    machine_dir(tmp_path, "upload-temp")
    machine_dir(tmp_path, ".git")
    (tmp_path / "empty").mkdir()
    assert discover(tmp_path) == [
        MachineSource(tmp_path / "db.yaml", tmp_path),
        MachineSource(web / "machine.yaml", web),
    ]


def test_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        discover(tmp_path / "nope")


def test_sources_for_file_machine_dir_and_machines_dir(tmp_path: Path) -> None:
    web = machine_dir(tmp_path, "web")
    (tmp_path / "db.yaml").write_text(DEFINITION)
    assert sources_for(tmp_path / "db.yaml") == [MachineSource(tmp_path / "db.yaml", tmp_path)]
    assert sources_for(web) == [MachineSource(web / "machine.yaml", web)]
    assert sources_for(tmp_path) == discover(tmp_path)
