"""load_directory with a SpecCache: a rescan re-parses only the files whose bytes changed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from steward.daemon import loader
from steward.daemon.loader import LoadReport, SpecCache, load_directory
from steward.watchers.registry import default_registry

MACHINE = """\
name: {name}
version: "{version}"
initial_state: idle
transitions:
  - {{name: go, from: [idle], destination: busy}}
"""


def write(machines: Path, name: str, version: str = "1.0.0") -> Path:
    d = machines / name
    d.mkdir(exist_ok=True)
    path = d / "machine.yaml"
    path.write_text(MACHINE.format(name=name, version=version))
    return path


def load(machines: Path, cache: SpecCache) -> LoadReport:
    return load_directory(machines, default_registry(), cache=cache)


@pytest.fixture
def machines(tmp_path: Path) -> Path:
    d = tmp_path / "machines"
    d.mkdir()
    write(d, "a")
    write(d, "b")
    return d


def test_unchanged_files_are_not_parsed_again(machines: Path) -> None:
    cache = SpecCache()
    first = {s.name: s for s in load(machines, cache).specs}
    write(machines, "b", "2.0.0")
    second = {s.name: s for s in load(machines, cache).specs}
    assert second["a"] is first["a"]  # the remembered parse
    assert second["b"] is not first["b"]
    assert second["b"].version == "2.0.0"


def test_same_bytes_rewritten_are_a_hit(machines: Path) -> None:
    cache = SpecCache()
    (before,) = [s for s in load(machines, cache).specs if s.name == "a"]
    path = machines / "a" / "machine.yaml"
    path.write_bytes(path.read_bytes())
    (after,) = [s for s in load(machines, cache).specs if s.name == "a"]
    assert after is before


def test_checksums_of_every_file_read(machines: Path) -> None:
    (machines / "bad.yaml").write_text("name: [\n")
    report = load(machines, SpecCache())
    assert set(report.checksums) == {"a/machine.yaml", "b/machine.yaml", "bad.yaml"}
    assert report.checksums["a/machine.yaml"] == next(
        s.checksum for s in report.specs if s.name == "a"
    )


def test_an_invalid_file_reports_the_same_problems_from_the_cache(machines: Path) -> None:
    cache = SpecCache()
    write(machines, "b", "banana")
    first = load(machines, cache)
    second = load(machines, cache)
    assert first.problems == second.problems != []
    assert first.rejected == second.rejected == [machines / "b" / "machine.yaml"]
    assert [s.name for s in second.specs] == ["a"]


def test_cross_references_are_checked_on_every_load(machines: Path) -> None:
    cache = SpecCache()
    (machines / "sub.yaml").write_text(
        textwrap.dedent(
            """\
            name: sub
            version: "1.0.0"
            initial_state: idle
            transitions:
              - name: go
                from: [idle]
                destination: busy
                subscribe: [{machine_name: a, event: go}]
            """
        )
    )
    assert "sub" in {s.name for s in load(machines, cache).specs}
    path = machines / "a" / "machine.yaml"
    path.write_text(path.read_text().replace("name: go", "name: start"))
    report = load(machines, cache)  # sub.yaml is unchanged, but what it names went away
    assert "sub" not in {s.name for s in report.specs}
    assert [(p.file, p.path) for p in report.errors] == [
        ("sub.yaml", "transitions[0].subscribe[0]")
    ]


def test_removed_files_are_forgotten(machines: Path) -> None:
    cache = SpecCache()
    (first,) = [s for s in load(machines, cache).specs if s.name == "b"]
    path = machines / "b" / "machine.yaml"
    text = path.read_bytes()
    path.unlink()
    load(machines, cache)
    path.write_bytes(text)
    (again,) = [s for s in load(machines, cache).specs if s.name == "b"]
    assert again is not first and again == first


def test_a_file_unchanged_on_disk_is_not_even_read(
    machines: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SpecCache()
    load(machines, cache)
    reads: list[Path] = []
    real = loader.read_machine

    def counting(path: Path, file: str) -> bytes:
        reads.append(path)
        return real(path, file)

    monkeypatch.setattr(loader, "read_machine", counting)
    assert {s.name for s in load(machines, cache).specs} == {"a", "b"}
    assert reads == []  # inode, size, mtime and ctime as last seen
    path = machines / "a" / "machine.yaml"
    path.write_text(path.read_text().replace("1.0.0", "1.0.1"))  # same size, new mtime/ctime
    versions = {s.name: s.version for s in load(machines, cache).specs}
    assert reads == [path]
    assert versions == {"a": "1.0.1", "b": "1.0.0"}


def test_a_valid_machines_warnings_are_reported_every_load(machines: Path) -> None:
    path = machines / "a" / "machine.yaml"
    path.write_text(path.read_text() + "  - {name: never, from: [], destination: idle}\n")
    cache = SpecCache()
    for _ in range(2):  # parsed, then served from the cache: the same warning
        report = load(machines, cache)
        assert sorted(s.name for s in report.specs) == ["a", "b"]
        assert [str(p) for p in report.problems] == [
            "a/machine.yaml:6:25: transitions[1].from: warning: transition 'never' has no "
            "'from' states: it can never fire"
        ]
