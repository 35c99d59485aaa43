"""``steward``: the command line. Commands parse, call one function, print.

Output is for people by default and JSON with ``--json``. Errors are one line on stderr and
a non-zero exit, never a traceback; usage errors exit 2.

The parser is argparse (``steward.cmd.args``): click cost ~16 ms of imports before any command
ran. Each command imports what it needs in its body: `steward version` must not pay for the
daemon, `steward status` not for the machine loader (see bench/cli_speed.py).
"""

from __future__ import annotations

import os
import sys
from enum import IntEnum

from steward import __version__
from steward.cmd.args import LazyChoices, Parser, command, group, int_range, path
from steward.cmd.failure import fail
from steward.cmd.output import dump, echo

TYPE_CHECKING = False  # no `typing` import for `steward version` (see steward.cmd.args)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from steward.cmd.args import Handler
    from steward.cmd.client import ApiClient

DESCRIPTION = "steward: autonomous finite-state machines on every node."


class Exit(IntEnum):
    OK = 0
    FAILURE = 1  # an error, or an invalid machine for `validate`
    USAGE = 2


# run -------------------------------------------------------------------------------------------
def run(
    machines_dir: str | None,
    state_dir: str | None,
    node: str | None,
    config_file: str | None,
    socket: str | None,
    log_format: str | None,
    log_level: str | None,
    insecure_permissions: bool,
    nats_servers: list[str] | None,
    nats_stream: str | None,
    nats_credentials: str | None,
    metrics_listen: str | None,
    facts: str | None,
) -> None:
    """Run the daemon in the foreground."""
    import asyncio

    from steward.daemon.config import config_path, load_config
    from steward.daemon.heap import limit_malloc_arenas
    from steward.daemon.logs import setup_logging
    from steward.daemon.server import Daemon

    path, required = config_path(config_file, os.environ)
    config = load_config(
        path,
        required=required,
        overrides={
            "machines_dir": machines_dir,
            "state_dir": state_dir,
            "node": node,
            "socket": socket,
            "log_format": log_format,
            "log_level": log_level,
            "insecure_permissions": insecure_permissions or None,
            "nats_servers": tuple(nats_servers) if nats_servers else None,
            "nats_stream": nats_stream,
            "nats_credentials": nats_credentials,
            "metrics_listen": metrics_listen,
            "facts": facts,
        },
    )
    setup_logging(config.log_format, config.log_level)
    limit_malloc_arenas()  # before any thread starts
    code = asyncio.run(Daemon(config).serve())
    sys.exit(int(code))


# validate --------------------------------------------------------------------------------------
def validate(paths: list[str], as_json: bool, quiet: bool, insecure_permissions: bool) -> None:
    """Check machine files or directories; exit 1 if any is invalid.

    A PATH is a machine.yaml, a machine directory, or a machines directory. Machines given
    together are cross-checked (subscribe, foreign_state_required).
    """
    from pathlib import Path

    from steward.daemon.loader import load_sources
    from steward.machine.discovery import sources_for
    from steward.watchers.registry import default_registry

    sources = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            fail(f"{p}: no such file or directory")
        try:
            sources.extend(sources_for(path))
        except OSError as exc:
            fail(f"{p}: {exc.strerror or exc}")
    report = load_sources(sources, default_registry(), check_permissions=not insecure_permissions)
    errors = report.errors
    if as_json:
        dump(
            {
                "valid": [
                    {"file": str(s.path), "name": s.name, "version": s.version}
                    for s in report.specs
                ],
                "invalid": sorted({p.file for p in errors}),
                "problems": [p.as_dict() for p in report.problems],
            }
        )
    else:
        for problem in sorted(report.problems, key=lambda p: (p.file, p.line, p.column)):
            echo(str(problem))
        if not quiet:
            for spec in report.specs:
                echo(f"ok: {spec.path}: {spec.name} {spec.version}")
            bad = len({p.file for p in errors})
            echo(
                f"{len(report.specs)} valid, {bad} invalid"
                + (
                    f", {len(report.problems) - len(errors)} warnings"
                    if len(report.problems) > len(errors)
                    else ""
                ),
                err=True,
            )
    if not sources:
        fail("no machine definitions found in " + ", ".join(paths))
    sys.exit(Exit.FAILURE if errors else Exit.OK)


# client commands -------------------------------------------------------------------------------
def _client(socket: str | None, state_dir: str | None, config_file: str | None) -> ApiClient:
    from pathlib import Path

    from steward.cmd.client import ApiClient

    if socket:
        return ApiClient(Path(socket))
    if state_dir:
        return ApiClient(Path(state_dir) / "steward.sock")
    from steward.daemon.config import config_path, load_config

    path, required = config_path(config_file, os.environ)
    return ApiClient(load_config(path, required=required).socket_path)


def status(
    machine: str | None,
    as_json: bool,
    socket: str | None,
    state_dir: str | None,
    config_file: str | None,
) -> None:
    """Show every machine (or one): state, since when, watchers' last results."""
    from steward.cmd.render import render_status

    client = _client(socket, state_dir, config_file)
    data = client.status()
    if machine is not None:
        data["machines"] = [m for m in data["machines"] if m["name"] == machine]
        if not data["machines"]:
            fail(f"no machine named {machine!r} on node {data.get('node')}")
    if as_json:
        dump(data)
    else:
        echo(render_status(data), nl=False)


def transition(
    machine: str,
    name: str,
    as_json: bool,
    socket: str | None,
    state_dir: str | None,
    config_file: str | None,
) -> None:
    """Fire transition NAME on MACHINE through the daemon."""
    result = _client(socket, state_dir, config_file).transition(machine, name)
    if as_json:
        dump(result)
    elif result.get("changed"):
        echo(
            f"{machine}: {name}: {result['from_state']} -> {result['to_state']} "
            f"(seq {result['seq']})"
        )
    else:
        echo(f"{machine}: {name}: already in {result['to_state']}; nothing changed")


def history(
    machine: str,
    limit: int,
    as_json: bool,
    socket: str | None,
    state_dir: str | None,
    config_file: str | None,
) -> None:
    """Show MACHINE's last transitions with their causes, oldest first (kept across restarts)."""
    entries = _client(socket, state_dir, config_file).history(machine, limit)
    if as_json:
        dump(entries)
    else:
        from steward.cmd.render import render_history

        echo(render_history(entries), nl=False)


def events(
    follow: bool,
    nats_url: str | None,
    node: str | None,
    machine: str | None,
    kind: str | None,
    limit: int,
    prefix: str,
    nats_credentials: str | None,
    as_json: bool,
    socket: str | None,
    state_dir: str | None,
    config_file: str | None,
) -> None:
    """Show events: the local daemon's (recent, or --follow), or a fleet's through --nats."""

    import json

    def show(body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            echo(f"(not a JSON event: {body[:80]!r})", err=True)
            return
        echo(json.dumps(event) if as_json else render_event(event))

    from steward.cmd.render import render_event

    client = _client(socket, state_dir, config_file)

    def from_nats(url: str) -> None:
        import asyncio

        from steward.cmd.events import fleet_events, fleet_subject
        from steward.events.envelope import EventKind

        subject = fleet_subject(prefix, node, machine, EventKind(kind) if kind else None)
        asyncio.run(
            fleet_events(
                url,
                subject,
                show,
                credentials=nats_credentials,
                on_subscribed=lambda: echo(f"subscribed to {subject} on {url}", err=True),
            )
        )

    if node and not nats_url:
        fail("--node needs --nats (the local daemon only has its own node's events)", Exit.USAGE)
    if not nats_url:
        client.require_socket()
    try:
        if nats_url:
            from_nats(nats_url)
        else:
            for body in client.events(follow=follow, machine=machine, kind=kind, recent=limit):
                show(body)
    except KeyboardInterrupt:
        pass


# graph, version --------------------------------------------------------------------------------
def graph(path: str, fmt: str) -> None:
    """Print a machine's states and transitions (Graphviz dot or Mermaid)."""
    from pathlib import Path

    from steward.errors import Severity, SpecError
    from steward.machine.discovery import sources_for
    from steward.machine.graph import to_dot, to_mermaid
    from steward.machine.validate import load_machine
    from steward.watchers.registry import default_registry

    sources = sources_for(Path(path))
    if len(sources) != 1:
        fail(f"{path}: expected one machine, found {len(sources)}", Exit.USAGE)
    try:
        spec = load_machine(sources[0].path, default_registry(), directory=sources[0].directory)
    except SpecError as exc:
        for p in exc.problems:
            echo(str(p), err=True)
        sys.exit(
            Exit.FAILURE if any(p.severity is Severity.ERROR for p in exc.problems) else Exit.OK
        )
    echo(to_dot(spec) if fmt == "dot" else to_mermaid(spec), nl=False)


def version(as_json: bool) -> None:
    """Print steward's version."""
    if as_json:
        dump({"version": __version__, "python": sys.version.split()[0]})
    else:
        echo(f"steward {__version__}")


# the parser ------------------------------------------------------------------------------------
def _event_kinds() -> list[str]:
    from steward.events.envelope import EventKind

    return [k.value for k in EventKind]


def _load_governor(parser: Parser) -> None:
    from steward.cmd.governor import add_commands

    add_commands(parser.subcommands())


def _load_fleet(parser: Parser) -> None:
    from steward.cmd import fleet, fleet_status

    commands = parser.subcommands()
    fleet.add_commands(commands)
    fleet_status.add_commands(commands)


def _client_options(parser: Parser) -> None:
    parser.add_argument("--socket", help="The daemon's control socket.")
    parser.add_argument("--state-dir", help="The daemon's state directory.")
    parser.add_argument(
        "--config", dest="config_file", type=path(dir_okay=False), help="Config file."
    )


def _json_option(parser: Parser, help: str = "Print JSON.") -> None:
    parser.add_argument("--json", dest="as_json", action="store_true", help=help)


def _run_arguments(parser: Parser) -> None:
    parser.add_argument(
        "--machines", dest="machines_dir", type=path(file_okay=False), help="Machines directory."
    )
    parser.add_argument(
        "--state-dir", type=path(file_okay=False), help="State directory (database, socket)."
    )
    parser.add_argument("--node", help="This node's name (default: the host name).")
    parser.add_argument(
        "--config", dest="config_file", type=path(dir_okay=False), help="Config file."
    )
    parser.add_argument("--socket", type=path(dir_okay=False), help="Control socket path.")
    parser.add_argument("--log-format", choices=["auto", "json", "text"], help="Log format.")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="Log level."
    )
    parser.add_argument(
        "--insecure-permissions",
        action="store_true",
        help="Development only: accept machine files writable by group/other or owned by others.",
    )
    parser.add_argument(
        "--nats-server", dest="nats_servers", action="append", help="NATS URL (repeatable)."
    )
    parser.add_argument(
        "--nats-stream", help="JetStream stream to publish into (default: core NATS)."
    )
    parser.add_argument("--nats-credentials", type=path(dir_okay=False), help="NATS .creds file.")
    parser.add_argument(
        "--metrics-listen",
        metavar="ADDR",
        help="Prometheus endpoint HOST:PORT (default 127.0.0.1:9464; port 0: any free; off: none).",
    )
    parser.add_argument(
        "--facts",
        type=path(dir_okay=False),
        help="The node's facts: a JSON or YAML (.yaml/.yml) file holding a mapping.",
    )


def _validate_arguments(parser: Parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH")
    _json_option(parser, "Print problems as JSON.")
    parser.add_argument("-q", "--quiet", action="store_true", help="Print only problems.")
    parser.add_argument(
        "--insecure-permissions", action="store_true", help="Do not check file modes and owners."
    )


def _status_arguments(parser: Parser) -> None:
    parser.add_argument("machine", nargs="?", metavar="MACHINE")
    _json_option(parser)
    _client_options(parser)


def _transition_arguments(parser: Parser) -> None:
    parser.add_argument("machine", metavar="MACHINE")
    parser.add_argument("name", metavar="NAME")
    _json_option(parser)
    _client_options(parser)


def _history_arguments(parser: Parser) -> None:
    parser.add_argument("machine", metavar="MACHINE")
    parser.add_argument(
        "-n",
        "--limit",
        default=20,
        type=int_range(1),
        help="The last N transitions.  [default: 20]",
    )
    _json_option(parser, "Print the transitions as a JSON list.")
    _client_options(parser)


def _events_arguments(parser: Parser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="Keep streaming new events.")
    parser.add_argument(
        "--nats", dest="nats_url", help="Subscribe to a whole fleet through this NATS server."
    )
    parser.add_argument("--node", help="Only this node's events (with --nats).")
    parser.add_argument("--machine", help="Only this machine's events.")
    parser.add_argument(
        "--type",
        dest="kind",
        choices=LazyChoices(_event_kinds),
        metavar="TYPE",  # argparse reads the choices for a metavar when the option is added
        help="Only this kind: %(choices)s.",
    )
    parser.add_argument(
        "-n", "--limit", default=20, type=int, help="Recent events to show first.  [default: 20]"
    )
    parser.add_argument(
        "--prefix",
        default="steward.events",
        help="NATS subject prefix.  [default: steward.events]",
    )
    parser.add_argument("--nats-credentials", type=path(dir_okay=False), help="NATS .creds file.")
    _json_option(parser, "Print each CloudEvent as JSON.")
    _client_options(parser)


def _graph_arguments(parser: Parser) -> None:
    parser.add_argument("path", type=path(exists=True), metavar="PATH")
    parser.add_argument(
        "--format", dest="fmt", choices=["dot", "mermaid"], default="dot", help="[default: dot]"
    )


def _version_arguments(parser: Parser) -> None:
    _json_option(parser)


def build_parser() -> Parser:
    """The whole command line: the commands' names and help lines; each command adds its
    arguments (``governor`` and ``fleet`` their subcommands) when it is used."""
    parser = Parser(prog="steward", description=DESCRIPTION)
    parser.add_argument(
        "-V",
        "--version",
        action="version",
        version=f"steward, version {__version__}",
        help="Show the version and exit.",
    )
    commands = parser.subcommands()
    command(commands, run, load=_run_arguments)
    command(commands, validate, load=_validate_arguments)
    command(commands, status, load=_status_arguments)
    command(commands, transition, load=_transition_arguments)
    command(commands, history, load=_history_arguments)
    command(commands, events, load=_events_arguments)
    command(commands, graph, load=_graph_arguments)
    command(commands, version, load=_version_arguments)
    group(
        commands,
        "governor",
        "Network-wide concurrency limits, shared with Choria (JetStream GOVERNOR_<name>).",
        _load_governor,
    )
    group(commands, "fleet", "Signed specifications of the machines a fleet runs.", _load_fleet)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's), run the command; its exit code."""
    handler, values = parse(argv)
    try:
        handler(**values)
    except KeyboardInterrupt:
        echo("\nAborted!", err=True)
        return Exit.FAILURE
    except BrokenPipeError:  # `steward status | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return Exit.FAILURE
    except Exception as exc:
        from steward.errors import StewardError

        if not isinstance(exc, StewardError):
            raise
        fail(str(exc))
    return Exit.OK


def parse(argv: Sequence[str] | None) -> tuple[Handler, dict[str, Any]]:
    """The command ``argv`` names and its keyword arguments; a usage error exits 2, as does a
    group named without its subcommand (after printing the group's help)."""
    args, extra = build_parser().parse_known_args(argv)
    values = vars(args)
    parser: Parser = values.pop("_parser")
    handler: Handler | None = values.pop("_run", None)
    passthrough = values.pop("_passthrough", None)
    values.pop("_command", None)
    if extra:
        if passthrough is None:
            parser.error(
                f"No such option: {extra[0]}"
                if extra[0].startswith("-")
                else f"Got unexpected extra argument ({' '.join(extra)})"
            )
        if "--" in extra:  # `governor run NAME [options] -- COMMAND…`: it ends the options
            extra.remove("--")
        values[passthrough] = [*(values.get(passthrough) or ()), *extra]
    if handler is None:
        parser.print_help(sys.stderr)
        sys.exit(Exit.USAGE)
    return handler, values
