"""``steward governor``: Choria's concurrency governors from the command line.

Every command connects to NATS itself (``--nats URL``, else the config's ``nats.servers``),
calls one function of ``steward.governor``, prints, and closes. The NATS client is imported
only when a governor command runs, so the rest of the CLI does not pay for it.
"""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from steward.cmd.args import Parser, command, int_range, path
from steward.cmd.failure import fail
from steward.cmd.output import dump, echo
from steward.errors import NoSlot, StewardError
from steward.governor.names import COLLECTIVE, name_problem
from steward.machine.durations import parse_duration

if TYPE_CHECKING:
    from nats.aio.client import Client

    from steward.cmd.args import Subcommands

T = TypeVar("T")
USAGE = 2
RUN_MAX_WAIT = 300.0  # Choria's `governor run --max-wait` default: 5m
RUN_INTERVAL = 5.0  # Choria's `governor run --interval` default (at least 1s)
STOP_CHILD = 10.0  # seconds a command has to end after SIGTERM before SIGKILL


def duration(name: str) -> Callable[[str], float]:
    """A duration argument (``5m``, ``1m30s``); a bad one is a usage error naming ``name``."""

    def convert(value: str) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            fail(f"{name}: {exc}", USAGE)

    return convert


def governor_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        fail(problem, USAGE)
    return value


def with_nats(
    nats_url: str | None,
    credentials: str | None,
    config_file: str | None,
    work: Callable[[Client], Awaitable[T]],
) -> T:
    """Connect, run ``work``, close; errors as one line and exit 1."""
    url, creds = _server(nats_url, credentials, config_file)

    async def session() -> T:
        from steward.cmd.connect import connect_nats

        nc = await connect_nats(url, creds, name="steward governor")
        try:
            return await work(nc)
        finally:
            await nc.close()

    from nats.errors import Error as NatsError

    try:
        return asyncio.run(session())
    except StewardError as exc:
        fail(str(exc))
    except NatsError as exc:
        fail(f"NATS: {getattr(exc, 'description', None) or exc}")
    except TimeoutError:
        fail(f"NATS at {url} did not answer in time")


def _server(
    nats_url: str | None, credentials: str | None, config_file: str | None
) -> tuple[str, str | None]:
    if nats_url:
        return nats_url, credentials
    from steward.daemon.config import config_path, load_config

    try:
        path, required = config_path(config_file, os.environ)
        nats = load_config(path, required=required).nats
    except StewardError as exc:
        fail(str(exc))
    if not nats.servers:
        fail("no NATS server: give --nats URL or set nats.servers in steward.yaml", USAGE)
    return nats.servers[0], credentials or nats.credentials


def add(
    name: str,
    capacity: int,
    expire: float,
    replicas: int,
    force: bool,
    collective: str,
    nats_url: str | None,
    nats_credentials: str | None,
    config_file: str | None,
) -> None:
    """Create governor NAME with CAPACITY slots, each evicted after EXPIRE (or update it)."""
    from steward.cmd.render import render_governor
    from steward.governor import admin

    async def work(nc: Client) -> tuple[admin.GovernorInfo, admin.GovernorInfo | None]:
        return await admin.add(
            nc, name, capacity, expire, replicas, update=force, collective=collective
        )

    now, before = with_nats(nats_url, nats_credentials, config_file, work)
    what = "created" if before is None else ("unchanged" if now == before else "updated")
    echo(f"governor {name} {what}")
    echo(render_governor(now.as_dict(), []), nl=False)


def list_(
    as_json: bool,
    collective: str,
    nats_url: str | None,
    nats_credentials: str | None,
    config_file: str | None,
) -> None:
    """List governors with their capacity and taken slots."""
    from steward.cmd.render import render_governors
    from steward.governor import admin

    async def work(nc: Client) -> list[dict[str, Any]]:
        return [(await admin.info(nc, n)).as_dict() for n in await admin.names(nc, collective)]

    found = with_nats(nats_url, nats_credentials, config_file, work)
    if as_json:
        dump(found)
    else:
        echo(render_governors(found), nl=False)


def view(
    name: str,
    as_json: bool,
    nats_url: str | None,
    nats_credentials: str | None,
    config_file: str | None,
) -> None:
    """Show governor NAME: its settings and who holds its slots."""
    import datetime

    from steward.cmd.render import render_governor
    from steward.governor import admin

    async def work(nc: Client) -> tuple[admin.GovernorInfo, list[admin.Lease]]:
        return await admin.info(nc, name), await admin.leases(nc, name)

    found, leases = with_nats(nats_url, nats_credentials, config_file, work)
    now = datetime.datetime.now(datetime.UTC)
    rows = [
        {
            "seq": lease.seq,
            "holder": lease.holder,
            "since": lease.since.isoformat() if lease.since else None,
            "age": lease.age(now),
        }
        for lease in leases
    ]
    if as_json:
        dump({**found.as_dict(), "leases": rows})
    else:
        echo(render_governor(found.as_dict(), rows), nl=False)


def evict(
    name: str,
    seq: int,
    force: bool,
    nats_url: str | None,
    nats_credentials: str | None,
    config_file: str | None,
) -> None:
    """Free slot LEASE (the ID `view` shows) of governor NAME."""
    from steward.governor import admin

    async def work(nc: Client) -> str:
        return await admin.evict(nc, name, seq)

    holder = with_nats(nats_url, nats_credentials, config_file, work)
    echo(f"evicted {holder!r} from slot {seq} of governor {name}")


def reset(
    name: str,
    force: bool,
    nats_url: str | None,
    nats_credentials: str | None,
    config_file: str | None,
) -> None:
    """Free every slot of governor NAME."""
    from steward.governor import admin

    async def work(nc: Client) -> int:
        return await admin.reset(nc, name)

    freed = with_nats(nats_url, nats_credentials, config_file, work)
    echo(f"governor {name}: freed {freed} slot{'s' if freed != 1 else ''}")


def delete(
    name: str,
    force: bool,
    nats_url: str | None,
    nats_credentials: str | None,
    config_file: str | None,
) -> None:
    """Delete governor NAME (its stream), whoever holds slots."""
    from steward.governor import admin

    async def work(nc: Client) -> None:
        await admin.delete(nc, name)

    with_nats(nats_url, nats_credentials, config_file, work)
    echo(f"governor {name} deleted")


def run(
    name: str,
    command: list[str],
    max_wait: float,
    interval: float,
    max_per_period: bool,
    identity: str | None,
    collective: str,
    nats_url: str | None,
    nats_credentials: str | None,
    config_file: str | None,
) -> None:
    """Run COMMAND while holding a slot in governor NAME; exit with its exit code.

    Use `--` before COMMAND when it has options. One argument is split like a shell would
    (`run cron "job.sh --quiet"`, as Choria does).
    """
    if interval < 1:
        fail("--interval must be at least 1s", USAGE)
    argv = list(command)
    if len(argv) == 1:
        try:
            argv = shlex.split(argv[0])
        except ValueError as exc:
            fail(f"cannot split command: {exc}", USAGE)
    if not argv:
        fail("no command given", USAGE)
    holder = identity or socket.gethostname()

    async def work(nc: Client) -> int:
        from steward.clock import SystemClock
        from steward.governor.slots import Backoff, ConnectedClient, holding

        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            async with holding(
                ConnectedClient(nc),
                name,
                holder,
                max_wait=max_wait,
                clock=SystemClock(),
                rng=random.Random(),
                backoff=Backoff(interval),
                give_back=not max_per_period,
                collective=collective,
            ):
                return await _execute(argv)
        except NoSlot as exc:
            if max_per_period:
                return 0  # this period's runs are done elsewhere (Choria: exit 0)
            raise NoSlot(f"could not get an execution slot: {exc}") from exc

    try:
        code = with_nats(nats_url, nats_credentials, config_file, work)
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except asyncio.CancelledError:  # SIGTERM: the command was stopped, the slot given back
        code = 128 + signal.SIGTERM
    sys.exit(code)


async def _execute(argv: list[str]) -> int:
    """Run ``argv`` with this terminal; its exit code. A cancellation stops it first."""
    try:
        proc = await asyncio.create_subprocess_exec(*argv)
    except OSError as exc:
        raise StewardError(f"execution failed: {argv[0]}: {exc.strerror or exc}") from exc
    try:
        return await proc.wait()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(STOP_CHILD):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


# the parser ------------------------------------------------------------------------------------
def _connection_options(parser: Parser) -> None:
    parser.add_argument("--nats", dest="nats_url", help="NATS URL (default: the config's servers).")
    parser.add_argument("--nats-credentials", type=path(dir_okay=False), help=".creds file.")
    parser.add_argument(
        "--config", dest="config_file", type=path(dir_okay=False), help="Config file."
    )


def _collective(parser: Parser) -> None:
    parser.add_argument(
        "--collective", default=COLLECTIVE, help=f"Subject prefix.  [default: {COLLECTIVE}]"
    )


def _force(parser: Parser, help: str = "Accepted for Choria's CLI; never prompts.") -> None:
    parser.add_argument("-f", "--force", action="store_true", help=help)


def _json_option(parser: Parser) -> None:
    parser.add_argument("--json", dest="as_json", action="store_true", help="Print JSON.")


def add_commands(commands: Subcommands) -> None:
    """``steward governor …``"""

    p = command(commands, add)
    p.add_argument("name", type=governor_name, metavar="NAME")
    p.add_argument("capacity", type=int_range(1), metavar="CAPACITY")
    p.add_argument("expire", type=duration("EXPIRE"), metavar="EXPIRE")
    p.add_argument("replicas", type=int_range(1, 5), default=1, nargs="?", metavar="REPLICAS")
    _force(p, "Change an existing governor's settings.")
    _collective(p)
    _connection_options(p)

    p = command(commands, list_)
    _json_option(p)
    _collective(p)
    _connection_options(p)

    p = command(commands, view)
    p.add_argument("name", type=governor_name, metavar="NAME")
    _json_option(p)
    _connection_options(p)

    p = command(commands, evict)
    p.add_argument("name", type=governor_name, metavar="NAME")
    p.add_argument("seq", type=int_range(1), metavar="LEASE")
    _force(p)
    _connection_options(p)

    for fn in (reset, delete):
        p = command(commands, fn)
        p.add_argument("name", type=governor_name, metavar="NAME")
        _force(p)
        _connection_options(p)

    p = command(commands, run, usage="%(prog)s [options] NAME [--] COMMAND...")
    p.set_defaults(_passthrough="command", command=[])
    p.add_argument("name", type=governor_name, metavar="NAME")
    p.add_argument(
        "--max-wait",
        type=duration("max_wait"),
        default="5m",
        help="Give up after this.  [default: 5m]",
    )
    p.add_argument(
        "--interval",
        type=duration("interval"),
        default="5s",
        help="Between tries (>= 1s).  [default: 5s]",
    )
    p.add_argument(
        "--max-per-period",
        action="store_true",
        help="Keep the slot until it expires: at most CAPACITY runs per EXPIRE period.",
    )
    p.add_argument(
        "--identity", help="Who holds the slot, as `view` shows it (default: host name)."
    )
    _collective(p)
    _connection_options(p)
