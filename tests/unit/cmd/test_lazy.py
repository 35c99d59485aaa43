"""Each command imports only what it needs: what a new process has imported once it ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.cli import invoke

REPO = Path(__file__).resolve().parents[3]
# run a command in a fresh interpreter, then print the modules it imported
PROBE = """\
import json, sys
from steward.cmd.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(*args: str, flags: tuple[str, ...] = ()) -> set[str]:
    out = subprocess.run(
        [sys.executable, *flags, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    return set(json.loads(out.stderr.strip().splitlines()[-1]))


def heavy(modules: set[str], *names: str) -> set[str]:
    return {m for m in modules if m.split(".")[0] in names or m.startswith(names)}


def test_version_imports_neither_the_daemon_nor_an_event_loop_nor_click() -> None:
    modules = imported_by("version", flags=("-S",))  # -S: no editable finder (it imports pathlib)
    assert "steward.cmd.main" in modules
    assert not heavy(
        modules,
        "asyncio",
        "aiohttp",
        "click",
        "nats",
        "ruamel",
        "pathlib",
        "shutil",
        "typing",
        "steward.daemon",
        "steward.events",
        "steward.cmd.governor",
        "steward.cmd.fleet",
    )


def test_status_imports_no_daemon_server_watcher_or_aiohttp(tmp_path: Path) -> None:
    modules = imported_by("status", "--socket", str(tmp_path / "none.sock"))
    assert "steward.cmd.client" in modules
    assert not heavy(
        modules, "asyncio", "aiohttp", "click", "nats", "steward.daemon", "steward.watchers"
    )


def test_status_reads_the_config_without_the_modules_that_use_its_settings(
    tmp_path: Path,
) -> None:
    config = tmp_path / "steward.yaml"
    config.write_text(f"state_dir: {tmp_path}\nnats:\n  servers: nats://127.0.0.1:4222\n")
    modules = imported_by("status", "--config", str(config))
    assert {"steward.daemon.config", "steward.settings", "steward.cmd.client"} <= modules
    assert not heavy(
        modules,
        "asyncio",
        "steward.broker",  # the NATS link: its settings are in steward.settings
        "steward.events",
        "steward.fleet",
        "steward.machine.history",
        "steward.templates",  # machine files' templates, not the config's
        "decimal",
    )


def test_validate_imports_neither_aiohttp_nor_the_watcher_types_it_does_not_meet() -> None:
    # exec, file, health, schedule, timer; modes and owners not checked: they depend on the checkout
    modules = imported_by("validate", "--insecure-permissions", str(REPO / "machines"))
    assert {f"steward.watchers.{t}" for t in ("exec", "file", "health", "schedule")} <= modules
    assert not heavy(
        modules,
        "asyncio",  # the watchers' run loop, not their properties
        "logging",
        "tempfile",
        "steward.processes.run",
        "steward.processes.table",
        "aiohttp",
        "nats",
        "steward.daemon.server",
        "steward.daemon.api",
        "steward.watchers.archive",
        "steward.watchers.docker",
        "steward.watchers.kv",
        "steward.watchers.expression",
    )


def test_lazy_subcommands_are_listed_and_run() -> None:
    top = invoke("--help")
    assert top.exit_code == 0
    assert "\n    governor " in top.stdout and "\n    fleet " in top.stdout
    fleet = invoke("fleet", "--help")
    assert fleet.exit_code == 0
    for command in ("status", "watch", "purge", "pack"):
        assert f"\n    {command} " in fleet.stdout


def test_the_event_type_choice_is_read_when_needed() -> None:
    help_text = invoke("events", "--help").stdout
    assert "Only this kind: transition, watcher, lifecycle." in help_text
    bad = invoke("events", "--type", "bogus")
    assert bad.exit_code == 2
    assert "invalid choice: 'bogus' (choose from 'transition', 'watcher', 'lifecycle')" in (
        bad.stderr
    )
