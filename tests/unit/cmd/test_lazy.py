"""Each command imports only what it needs: what a new process has imported once it ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from steward.cmd.main import cli

REPO = Path(__file__).resolve().parents[3]
# run a command in a fresh interpreter, then print the modules it imported
PROBE = """\
import json, sys
from steward.cmd.main import main
sys.argv = ["steward", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(*args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    return set(json.loads(out.stderr.strip().splitlines()[-1]))


def heavy(modules: set[str], *names: str) -> set[str]:
    return {m for m in modules if m.split(".")[0] in names or m.startswith(names)}


def test_version_imports_neither_the_daemon_nor_an_event_loop() -> None:
    modules = imported_by("version")
    assert "steward.cmd.main" in modules
    assert not heavy(
        modules, "asyncio", "aiohttp", "nats", "ruamel", "steward.daemon", "steward.cmd.governor"
    )


def test_status_imports_no_daemon_server_watcher_or_aiohttp(tmp_path: Path) -> None:
    modules = imported_by("status", "--socket", str(tmp_path / "none.sock"))
    assert "steward.cmd.client" in modules
    assert not heavy(modules, "asyncio", "aiohttp", "nats", "steward.daemon", "steward.watchers")


def test_validate_does_not_import_aiohttp() -> None:
    modules = imported_by("validate", str(REPO / "machines"))
    assert "steward.watchers.health" in modules
    assert not heavy(modules, "aiohttp", "nats", "steward.daemon.server", "steward.daemon.api")


def test_lazy_subcommands_are_listed_and_run() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    assert "governor" in top.output and "fleet" in top.output
    fleet = runner.invoke(cli, ["fleet", "--help"])
    assert fleet.exit_code == 0
    for command in ("status", "watch", "purge", "pack"):
        assert f"\n  {command} " in fleet.output


def test_the_event_type_choice_is_read_when_needed() -> None:
    runner = CliRunner()
    help_text = runner.invoke(cli, ["events", "--help"]).output
    assert "[transition|watcher|lifecycle]" in help_text
    bad = runner.invoke(cli, ["events", "--type", "bogus"])
    assert bad.exit_code == 2
    assert "'bogus' is not one of 'transition', 'watcher', 'lifecycle'" in bad.output
