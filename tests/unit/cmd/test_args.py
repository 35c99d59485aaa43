"""The parser keeps click's conventions: usage errors, groups, types, lazy subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from steward.cmd.args import LazyChoices, Parser, command, group, int_range, path
from steward.cmd.main import parse
from tests.support.cli import invoke


def test_a_usage_error_says_usage_where_to_look_and_what_is_wrong_and_exits_2() -> None:
    result = invoke("status", "--bogus")
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Usage: steward status ")
    assert "Try 'steward status --help' for help." in lines
    assert lines[-1] == "Error: No such option: --bogus"
    extra = invoke("version", "one", "two")
    assert extra.exit_code == 2
    assert extra.stderr.splitlines()[-1] == "Error: Got unexpected extra argument (one two)"


def test_missing_arguments_and_bad_values_are_usage_errors() -> None:
    assert invoke("transition", "door").exit_code == 2
    assert invoke("validate").exit_code == 2
    zero = invoke("history", "door", "-n", "0")
    assert zero.exit_code == 2 and "0 is not in the range x>=1." in zero.stderr
    assert invoke("history", "door", "--lim", "3").exit_code == 2  # no abbreviations


def test_a_group_without_its_subcommand_prints_its_help_and_exits_2() -> None:
    for argv in ([], ["governor"], ["fleet"]):
        result = invoke(*argv)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.startswith("Usage: steward") and "commands:" in result.stderr


def test_help_and_version_exit_0() -> None:
    top = invoke("-h")
    assert top.exit_code == 0 and "-V, --version" in top.stdout
    assert "Show this message and exit." in top.stdout
    assert invoke("--version").stdout == "steward, version 0.1.0\n"
    run_help = invoke("governor", "run", "--help").stdout
    assert "Use `--` before COMMAND when it has options." in run_help  # the docstring, as written


def test_a_command_gets_its_options_as_keyword_arguments() -> None:
    handler, values = parse(["status", "web", "--json", "--state-dir", "/s"])
    assert handler.__name__ == "status"
    assert values == {
        "machine": "web",
        "as_json": True,
        "socket": None,
        "state_dir": "/s",
        "config_file": None,
    }


def test_governor_run_passes_the_command_on_with_its_own_options() -> None:
    argv = ["governor", "run", "--nats", "nats://n", "cron", "--identity", "me"]
    _, values = parse([*argv, "--", "sh", "-c", "exit 7"])
    assert values["command"] == ["sh", "-c", "exit 7"]
    assert values["identity"] == "me" and values["nats_url"] == "nats://n"
    assert values["max_wait"] == 300.0 and values["interval"] == 5.0  # defaults converted
    _, values = parse(["governor", "run", "cron", "job.sh", "--quiet", "-x"])
    assert values["command"] == ["job.sh", "--quiet", "-x"]
    _, values = parse(["governor", "run", "cron", "job.sh --quiet"])
    assert values["command"] == ["job.sh --quiet"]


def test_paths_are_checked_as_click_did(tmp_path: Path) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("")
    with pytest.raises(argparse.ArgumentTypeError, match="is a file"):
        path(file_okay=False)(str(a_file))
    with pytest.raises(argparse.ArgumentTypeError, match="is a directory"):
        path(dir_okay=False)(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        path(exists=True)(str(tmp_path / "none"))
    assert path()(str(tmp_path / "none")) == str(tmp_path / "none")  # need not exist
    assert path(as_path=True)(str(a_file)) == a_file


def test_int_range() -> None:
    assert int_range(1, 5)("5") == 5
    for bad, message in (("6", "1<=x<=5"), ("0", "1<=x<=5"), ("x", "not a valid integer")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            int_range(1, 5)(bad)


def test_a_group_and_lazy_choices_load_only_when_used() -> None:
    loaded: list[str] = []

    def load_choices() -> list[str]:
        loaded.append("choices")
        return ["a", "b"]

    def pick(kind: str) -> None:
        """Pick one."""

    def load_group(parser: Parser) -> None:
        loaded.append("group")
        p = command(parser.subcommands(), pick)
        p.add_argument("kind", choices=LazyChoices(load_choices), metavar="KIND")

    root = Parser(prog="t")
    commands = root.subcommands()
    group(commands, "lazy", "A lazy group.", load_group)
    command(commands, pick, "other").add_argument("kind")
    root.parse_args(["other", "x"])
    assert loaded == []
    namespace = root.parse_args(["lazy", "pick", "b"])
    assert namespace.kind == "b" and loaded == ["group", "choices"]


def test_only_the_command_run_gets_its_arguments_built() -> None:
    from steward.cmd.main import build_parser

    parser = build_parser()
    parser.parse_known_args(["version"])
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    built = {
        name: [o for a in p._actions for o in a.option_strings]
        for name, p in commands.choices.items()
    }
    assert built["version"] == ["-h", "--help", "--json"]
    assert built["run"] == [] and built["status"] == []
