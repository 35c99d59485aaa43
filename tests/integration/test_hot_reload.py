"""Hot reload through inotify, with the real daemon: no SIGHUP needed to add, change or remove.

Machines that are not touched keep running undisturbed: the same ``instance``, state and
``seq``. Every wait is a condition with a deadline (the harness polls ``steward status``).
The daemon logs at debug here, so each rescan leaves a "machines directory rescanned" record.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import Daemon, MachinesDir, base_env, watcher

pytestmark = pytest.mark.e2e

RELOAD = 10.0  # seconds a change may take to show in status (the target is well under 1 s)
MACHINE = """\
name: {name}
version: {version}
initial_state: idle
transitions:
  - {{name: go, from: [idle], destination: busy}}
  - {{name: rest, from: [busy], destination: idle}}
"""


@pytest.fixture
def machines(tmp_path: Path) -> MachinesDir:
    return MachinesDir(tmp_path / "machines")


@pytest.fixture
def daemon(tmp_path: Path, machines: MachinesDir) -> Iterator[Daemon]:
    """A daemon, not yet started, logging at debug; the backstop rescan stays at 60 s."""
    config = tmp_path / "steward.yaml"
    config.write_text("log:\n  level: debug\n")
    # a Unix socket path must stay under 108 bytes: tmp_path can be too long
    state_dir = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))
    d = Daemon(machines.path, state_dir, tmp_path / "daemon.log", base_env(config))
    try:
        yield d
    finally:
        d.cleanup()
        shutil.rmtree(state_dir, ignore_errors=True)


def definition(name: str, version: str = "1.0.0") -> str:
    return MACHINE.format(name=name, version=version)


def rescans(daemon: Daemon) -> int:
    return sum(1 for r in daemon.logs() if r.get("msg") == "machines directory rescanned")


def records(daemon: Daemon, msg: str, **fields: Any) -> list[dict[str, Any]]:
    return [
        r
        for r in daemon.logs()
        if r.get("msg", "").startswith(msg) and all(r.get(k) == v for k, v in fields.items())
    ]


def starts(daemon: Daemon, name: str) -> int:
    return len(records(daemon, f"machine {name} started")) + len(
        records(daemon, f"machine {name} resumed")
    )


def problem_logs(daemon: Daemon) -> list[dict[str, Any]]:
    return [r for r in daemon.logs() if r.get("level") == "error" and "file" in r]


def assert_untouched(daemon: Daemon, before: list[dict[str, Any]], status: dict[str, Any]) -> None:
    for old in before:
        now = daemon.machine(old["name"], status)
        assert now is not None, f"{old['name']} is gone"
        keys = ("instance", "version", "state", "seq", "since")
        assert {k: now[k] for k in keys} == {k: old[k] for k in keys}, old["name"]


def test_add_change_break_fix_remove_without_sighup(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("steady", definition("steady"))
    machines.add("other", definition("other"))
    daemon.start()
    daemon.transition("steady", "go")
    steady = daemon.wait_machine("steady", lambda m: (m["state"], m["seq"]) == ("busy", 1))
    others = [steady, daemon.wait_state("other", "idle")]

    # add: a new machine dir starts on its own
    machines.add("extra", definition("extra"))
    extra = daemon.wait_state("extra", "idle", RELOAD)
    daemon.transition("extra", "go")

    # change: the new version is swapped in, resuming its state and seq
    machines.add("extra", definition("extra", "2.0.0"))
    v2 = daemon.wait_machine("extra", lambda m: m["version"] == "2.0.0", RELOAD, "version 2")
    assert v2["instance"] != extra["instance"]
    assert (v2["state"], v2["seq"], v2["resumed"]) == ("busy", 1, True)
    assert_untouched(daemon, others, daemon.status())

    # break: the old version keeps running, the problem shows in status
    machines.add("extra", definition("extra", "banana"))
    status = daemon.wait_for(
        lambda s: any(p["file"] == "extra/machine.yaml" for p in s["problems"]),
        RELOAD,
        "a problem for extra/machine.yaml",
    )
    (problem,) = status["problems"]
    assert (problem["line"], problem["column"], problem["path"]) == (2, 10, "version")
    kept = daemon.machine("extra", status)
    assert kept is not None
    assert (kept["instance"], kept["version"], kept["state"]) == (v2["instance"], "2.0.0", "busy")
    assert_untouched(daemon, others, status)

    # more rescans of the same broken content say nothing new
    for _ in range(2):
        seen = rescans(daemon)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(lambda _, seen=seen: rescans(daemon) > seen, RELOAD, "one more rescan")
    assert len(problem_logs(daemon)) == 1, problem_logs(daemon)
    assert len(records(daemon, "keeping the running version of extra")) == 1
    assert daemon.status()["problems"] == status["problems"]

    # fix: the fixed version replaces the one that kept running
    machines.add("extra", definition("extra", "3.0.0"))
    v3 = daemon.wait_machine("extra", lambda m: m["version"] == "3.0.0", RELOAD, "version 3")
    assert (v3["state"], v3["seq"]) == ("busy", 1)
    assert daemon.status()["problems"] == []

    # remove: the machine stops
    shutil.rmtree(machines.path / "extra")
    status = daemon.wait_for(
        lambda s: daemon.machine("extra", s) is None, RELOAD, "extra to be stopped"
    )
    assert_untouched(daemon, others, status)
    assert sorted(m["name"] for m in status["machines"]) == ["other", "steady"]
    assert daemon.running


def test_editor_style_saves_load_only_the_finished_file(
    daemon: Daemon, machines: MachinesDir
) -> None:
    web = machines.add("web", definition("web"))
    machines.add("steady", definition("steady"))
    daemon.start()
    first = daemon.wait_state("web", "idle")
    others = [daemon.wait_state("steady", "idle")]

    # an editor's swap file stays open beside the machine; the save writes a temp, renames it
    (web / ".machine.yaml.swp").write_text("b0VIM 9.0 swap: [not yaml")
    (web / "machine.yaml.tmp").write_text(definition("web", "2.0.0"))
    (web / "machine.yaml.tmp").replace(web / "machine.yaml")
    v2 = daemon.wait_machine("web", lambda m: m["version"] == "2.0.0", RELOAD, "version 2")
    assert v2["instance"] != first["instance"]

    # vim without backupcopy: write test file, original renamed to a backup, new file written
    (web / "4913").write_text("")
    (web / "4913").unlink()
    (web / "machine.yaml").rename(web / "machine.yaml~")
    (web / "machine.yaml").write_text(definition("web", "3.0.0"))
    (web / "machine.yaml~").unlink()
    daemon.wait_machine("web", lambda m: m["version"] == "3.0.0", RELOAD, "version 3")

    # rsync: a hidden temp name in the machines dir, renamed into place at the end
    temp = machines.path / ".db.yaml.Xa81Qz"
    temp.write_text(definition("db"))
    temp.replace(machines.path / "db.yaml")
    daemon.wait_state("db", "idle", RELOAD)

    status = daemon.status()
    assert status["problems"] == []
    assert problem_logs(daemon) == []
    assert records(daemon, "machine stopped") == []  # replaced in place, never stopped
    assert_untouched(daemon, others, status)


def test_a_slow_copy_of_a_large_file_is_loaded_once_complete(
    daemon: Daemon, machines: MachinesDir
) -> None:
    # 600 transitions (about 40 KB): cut anywhere, the file is invalid or defines fewer
    transitions = "".join(
        f"  - {{name: t{i:03d}, from: [s{i:03d}], destination: s{i + 1:03d}}}\n" for i in range(600)
    )
    text = (
        'name: big\nversion: "1.0.0"\ninitial_state: s000\ntransitions:\n'
        + transitions
        + "description: the last line\n"
    )
    daemon.start()
    path = machines.path / "big.yaml"
    # like `cp` from a slow disk: 512 bytes every 20 ms for about 1.6 s, longer than the
    # longest batch of file events (1 s), so batches end while the file is still growing
    with path.open("w") as f:
        for start in range(0, len(text), 512):
            f.write(text[start : start + 512])
            f.flush()
            time.sleep(0.02)
    big = daemon.wait_state("big", "s000", RELOAD)
    assert len(big["states"]) == 601
    assert problem_logs(daemon) == []  # no partial version was ever read as a machine
    assert starts(daemon, "big") == 1
    assert records(daemon, "machine big reloaded") == []


def test_a_script_writing_files_beside_its_machine_never_restarts_it(
    daemon: Daemon, machines: MachinesDir
) -> None:
    machines.add(
        "writer",
        """
        name: writer
        version: "1.0.0"
        initial_state: running
        transitions:
          - {name: tick, from: [running], destination: running}
        watchers:
          - name: work
            type: exec
            interval: 100ms
            success_transition: tick
            properties:
              command: ./work.sh
        """,
        {
            "work.sh": """
                date +%s%N > last-run.txt
                echo ran >> runs.log
                : > "run-$$.out"
                mkdir -p data && date > data/state.txt
                cp last-run.txt .last-run.swp
            """
        },
    )
    daemon.start()
    first = daemon.wait_machine("writer", lambda m: watcher(m, "work")["runs"] >= 1)
    before = rescans(daemon)
    status = daemon.wait_for(
        lambda s: watcher(daemon.machine("writer", s) or {"watchers": []}, "work")["runs"] >= 25,
        RELOAD,
        "25 runs of work.sh",
    )
    now = daemon.machine("writer", status)
    assert now is not None
    assert now["instance"] == first["instance"]
    assert len(list((machines.path / "writer").glob("run-*.out"))) >= 20
    assert rescans(daemon) == before  # the files it wrote never even woke a rescan
    assert starts(daemon, "writer") == 1

    # a wake-up with nothing changed (same bytes, new mtime) rescans and restarts nothing
    os.utime(machines.path / "writer" / "machine.yaml")
    daemon.wait_for(lambda _: rescans(daemon) > before, RELOAD, "the rescan after touch")
    again = daemon.machine("writer")
    assert again is not None
    assert again["instance"] == first["instance"]
    assert starts(daemon, "writer") == 1


def test_two_hundred_machines_added_at_once(daemon: Daemon, machines: MachinesDir) -> None:
    machines.add("steady", definition("steady"))
    daemon.start()
    daemon.transition("steady", "go")
    steady = daemon.wait_machine("steady", lambda m: m["seq"] == 1)

    names = [f"m{i:03d}" for i in range(200)]
    for name in names:
        machines.add(name, definition(name))
    status = daemon.wait_for(
        lambda s: len(s["machines"]) == 201, 60.0, "all 200 new machines running"
    )
    assert {m["name"] for m in status["machines"]} == {"steady", *names}
    assert all(m["state"] == "idle" for m in status["machines"] if m["name"] != "steady")
    assert status["problems"] == []
    assert_untouched(daemon, [steady], status)
    assert all(starts(daemon, name) == 1 for name in names)
