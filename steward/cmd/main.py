"""``steward``: the command line. Commands parse, call one function, print.

Output is for people by default and JSON with ``--json``. Errors are one line on stderr and
a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from steward import __version__
from steward.cmd.failure import fail
from steward.cmd.lazy import LazyChoice, LazyGroup

# Each command imports what it needs in its body: `steward version` must not pay for the
# daemon, `steward status` not for the machine loader (see bench/cli_speed.py).
if TYPE_CHECKING:
    from steward.cmd.client import ApiClient

P = ParamSpec("P")
R = TypeVar("R")


class Exit(IntEnum):
    OK = 0
    FAILURE = 1  # an error, or an invalid machine for `validate`
    USAGE = 2


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn steward's own errors into one line and exit 1."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            from steward.errors import StewardError

            if not isinstance(exc, StewardError):
                raise
            fail(str(exc))
            raise AssertionError("unreachable") from exc

    return wrapper


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _governor() -> click.Command:
    from steward.cmd.governor import governor

    return governor


def _fleet() -> click.Command:
    from steward.cmd import fleet_status
    from steward.cmd.fleet import fleet

    fleet.add_command(fleet_status.status)
    fleet.add_command(fleet_status.watch)
    fleet.add_command(fleet_status.purge)
    return fleet


def _event_kinds() -> list[str]:
    from steward.events.envelope import EventKind

    return [k.value for k in EventKind]


@click.group(
    cls=LazyGroup,
    lazy={"governor": _governor, "fleet": _fleet},
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "-V", "--version", prog_name="steward")
def cli() -> None:
    """steward: autonomous finite-state machines on every node."""


# run -------------------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--machines", "machines_dir", type=click.Path(file_okay=False), help="Machines directory."
)
@click.option(
    "--state-dir", type=click.Path(file_okay=False), help="State directory (database, socket)."
)
@click.option("--node", help="This node's name (default: the host name).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config file.")
@click.option("--socket", type=click.Path(dir_okay=False), help="Control socket path.")
@click.option("--log-format", type=click.Choice(["auto", "json", "text"]), help="Log format.")
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level."
)
@click.option(
    "--insecure-permissions",
    is_flag=True,
    help="Development only: accept machine files writable by group/other or owned by others.",
)
@click.option("--nats-server", "nats_servers", multiple=True, help="NATS URL (repeatable).")
@click.option("--nats-stream", help="JetStream stream to publish into (default: core NATS).")
@click.option("--nats-credentials", type=click.Path(dir_okay=False), help="NATS .creds file.")
@click.option(
    "--metrics-listen",
    metavar="ADDR",
    help="Prometheus endpoint HOST:PORT (default 127.0.0.1:9464; port 0: any free; off: none).",
)
@click.option(
    "--facts",
    type=click.Path(dir_okay=False),
    help="The node's facts: a JSON or YAML (.yaml/.yml) file holding a mapping.",
)
@friendly
def run(
    machines_dir: str | None,
    state_dir: str | None,
    node: str | None,
    config_file: str | None,
    socket: str | None,
    log_format: str | None,
    log_level: str | None,
    insecure_permissions: bool,
    nats_servers: tuple[str, ...],
    nats_stream: str | None,
    nats_credentials: str | None,
    metrics_listen: str | None,
    facts: str | None,
) -> None:
    """Run the daemon in the foreground."""
    import asyncio

    from steward.daemon.config import config_path, load_config
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
            "nats_servers": nats_servers or None,
            "nats_stream": nats_stream,
            "nats_credentials": nats_credentials,
            "metrics_listen": metrics_listen,
            "facts": facts,
        },
    )
    setup_logging(config.log_format, config.log_level)
    code = asyncio.run(Daemon(config).serve())
    sys.exit(int(code))


# validate --------------------------------------------------------------------------------------
@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.option("--insecure-permissions", is_flag=True, help="Do not check file modes and owners.")
def validate(
    paths: tuple[str, ...], as_json: bool, quiet: bool, insecure_permissions: bool
) -> None:
    """Check machine files or directories; exit 1 if any is invalid.

    A PATH is a machine.yaml, a machine directory, or a machines directory. Machines given
    together are cross-checked (subscribe, foreign_state_required).
    """
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
        _dump(
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
            click.echo(str(problem))
        if not quiet:
            for spec in report.specs:
                click.echo(f"ok: {spec.path}: {spec.name} {spec.version}")
            bad = len({p.file for p in errors})
            click.echo(
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
    from steward.cmd.client import ApiClient

    if socket:
        return ApiClient(Path(socket))
    if state_dir:
        return ApiClient(Path(state_dir) / "steward.sock")
    from steward.daemon.config import config_path, load_config

    path, required = config_path(config_file, os.environ)
    return ApiClient(load_config(path, required=required).socket_path)


def client_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--config", "config_file", type=click.Path(dir_okay=False), help="Config file."
    )(fn)
    fn = click.option("--state-dir", help="The daemon's state directory.")(fn)
    return click.option("--socket", help="The daemon's control socket.")(fn)


@cli.command()
@click.argument("machine", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@client_options
@friendly
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
        _dump(data)
    else:
        click.echo(render_status(data), nl=False)


@cli.command()
@click.argument("machine")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@client_options
@friendly
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
        _dump(result)
    elif result.get("changed"):
        click.echo(
            f"{machine}: {name}: {result['from_state']} -> {result['to_state']} "
            f"(seq {result['seq']})"
        )
    else:
        click.echo(f"{machine}: {name}: already in {result['to_state']}; nothing changed")


@cli.command()
@click.argument("machine")
@click.option(
    "-n",
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="The last N transitions.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the transitions as a JSON list.")
@client_options
@friendly
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
        _dump(entries)
    else:
        from steward.cmd.render import render_history

        click.echo(render_history(entries), nl=False)


@cli.command()
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new events.")
@click.option("--nats", "nats_url", help="Subscribe to a whole fleet through this NATS server.")
@click.option("--node", help="Only this node's events (with --nats).")
@click.option("--machine", help="Only this machine's events.")
@click.option("--type", "kind", type=LazyChoice(_event_kinds), help="Only this kind.")
@click.option("-n", "--limit", default=20, show_default=True, help="Recent events to show first.")
@click.option("--prefix", default="steward.events", show_default=True, help="NATS subject prefix.")
@click.option("--nats-credentials", type=click.Path(dir_okay=False), help="NATS .creds file.")
@click.option("--json", "as_json", is_flag=True, help="Print each CloudEvent as JSON.")
@client_options
@friendly
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

    def show(body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            click.echo(f"(not a JSON event: {body[:80]!r})", err=True)
            return
        click.echo(json.dumps(event) if as_json else render_event(event))

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
                on_subscribed=lambda: click.echo(f"subscribed to {subject} on {url}", err=True),
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
@cli.command()
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot", show_default=True
)
def graph(path: str, fmt: str) -> None:
    """Print a machine's states and transitions (Graphviz dot or Mermaid)."""
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
            click.echo(str(p), err=True)
        sys.exit(
            Exit.FAILURE if any(p.severity is Severity.ERROR for p in exc.problems) else Exit.OK
        )
    click.echo(to_dot(spec) if fmt == "dot" else to_mermaid(spec), nl=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def version(as_json: bool) -> None:
    """Print steward's version."""
    if as_json:
        _dump({"version": __version__, "python": sys.version.split()[0]})
    else:
        click.echo(f"steward {__version__}")


def main() -> None:
    cli(prog_name="steward")
