"""``steward fleet status|watch|purge``: the fleet as its bucket says it is (docs/fleet.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from steward.cmd.args import Parser, command, path
from steward.cmd.failure import fail
from steward.cmd.output import echo
from steward.fleet.state import DEFAULT_BUCKET

if TYPE_CHECKING:
    from steward.cmd.args import Subcommands
    from steward.fleet.state import FleetView

WATCH_REDRAW_EVERY = 0.25  # seconds: a burst of changes redraws once


def _chosen(
    node_glob: str | None, machine: str | None, state: str | None, stale: bool
) -> dict[str, Any]:
    """The filter options as ``FleetView.rows`` takes them."""
    return {"node_glob": node_glob, "machine": machine, "state": state, "stale": stale}


def status(
    url: str,
    credentials: str | None,
    bucket: str,
    node_glob: str | None,
    machine: str | None,
    state: str | None,
    stale: bool,
    as_json: bool,
) -> None:
    """Every node and machine of the fleet: state, since, online or offline (last seen)."""
    from steward.errors import ApiError

    filters = _chosen(node_glob, machine, state, stale)
    try:
        view = asyncio.run(_load(url, credentials, bucket))
    except (ApiError, OSError) as exc:
        fail(str(exc))
    now = time.time()
    rows = view.rows(now, **filters)
    if as_json:
        echo(json.dumps({"at": now, "rows": rows}, indent=2))
        return
    echo(render_fleet(view, rows, now))


def watch(
    url: str,
    credentials: str | None,
    bucket: str,
    node_glob: str | None,
    machine: str | None,
    state: str | None,
    stale: bool,
) -> None:
    """The fleet table, redrawn as it changes (and as nodes fall silent); Ctrl-C ends it."""
    from steward.errors import ApiError

    filters = _chosen(node_glob, machine, state, stale)
    try:
        asyncio.run(_watch(url, credentials, bucket, filters))
    except KeyboardInterrupt:
        pass
    except (ApiError, OSError) as exc:
        fail(str(exc))


def purge(node: str, url: str, credentials: str | None, bucket: str) -> None:
    """Remove NODE's keys (the node and its machines) from the bucket: for a node that is gone
    for good. A node still running writes them again."""
    from steward.errors import ApiError

    try:
        count = asyncio.run(_purge(node, url, credentials, bucket))
    except (ApiError, OSError) as exc:
        fail(str(exc))
    echo(f"purged {count} keys of node {node} from {bucket}")


# NATS ------------------------------------------------------------------------------------------
async def _load(url: str, credentials: str | None, bucket: str) -> FleetView:
    from steward.cmd.connect import connect_nats
    from steward.fleet.feed import FleetFeed, open_bucket

    nc = await connect_nats(url, credentials, name="steward fleet status")
    try:
        feed = FleetFeed(await open_bucket(nc.jetstream(), bucket), nc.jetstream())
        try:
            return await feed.load()
        finally:
            await feed.close()
    finally:
        await nc.close()


async def _watch(url: str, credentials: str | None, bucket: str, filters: dict[str, Any]) -> None:
    from steward.cmd.connect import connect_nats
    from steward.fleet.feed import FleetFeed, open_bucket

    nc = await connect_nats(url, credentials, name="steward fleet watch")
    feed = FleetFeed(await open_bucket(nc.jetstream(), bucket), nc.jetstream())
    try:
        view = await feed.load()
        changed = asyncio.Event()
        clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""  # a pipe gets plain screens

        async def follow() -> None:
            async for _ in feed.changes():
                changed.set()

        follower = asyncio.ensure_future(follow())
        try:
            while True:
                now = time.time()
                screen = render_fleet(view, view.rows(now, **filters), now)
                echo(clear + screen)
                changed.clear()
                deadline = view.next_deadline(now)  # a node may fall silent meanwhile
                wait = max(0.0, deadline - now) + 0.05 if deadline is not None else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await changed.wait()
                await asyncio.sleep(WATCH_REDRAW_EVERY)
        finally:
            follower.cancel()
    finally:
        await feed.close()
        await nc.close()


async def _purge(node: str, url: str, credentials: str | None, bucket: str) -> int:
    from steward.cmd.connect import connect_nats
    from steward.errors import ApiError
    from steward.fleet.feed import open_bucket, read_keys
    from steward.fleet.state import node_key, node_keys_filter

    nc = await connect_nats(url, credentials, name="steward fleet purge")
    try:
        kv = await open_bucket(nc.jetstream(), bucket)
        keys = [node_key(node)]
        for entry in await read_keys(kv, nc.jetstream(), node_keys_filter(node)):
            if entry.operation not in ("DEL", "PURGE"):
                keys.append(entry.key)
        for key in keys:
            await kv.purge(key)
        return len(keys)
    except ApiError:
        raise
    except Exception as exc:  # nats-py raises many types: one line for the user
        raise ApiError(f"cannot purge: {type(exc).__name__}: {exc}") from exc
    finally:
        await nc.close()


# text ------------------------------------------------------------------------------------------
def render_fleet(view: FleetView, rows: list[dict[str, Any]], now: float) -> str:
    from steward.machine.durations import format_duration

    nodes = view.node_names()
    online = sum(1 for n in nodes if (e := view.nodes.get(n)) is not None and e.online(now))
    head = (
        f"{len(nodes)} nodes ({online} online, {len(nodes) - online} offline), "
        f"{len(view.machines)} machines"
    )
    if not rows:
        return head + "\n(no rows match)"

    def ago(ts: Any) -> str:
        if not isinstance(ts, int | float) or ts <= 0:
            return "-"
        return format_duration(max(0.0, now - ts)) + " ago"

    table = [["NODE", "SEEN", "MACHINE", "STATE", "SINCE", "SEQ", "LAST", "CAUSE"]]
    for r in rows:
        seen = "online" if r["online"] else f"OFFLINE (seen {ago(r['last_seen'])})"
        if r.get("stopped"):
            seen = f"stopped ({ago(r['stopped'])})"
        elif r["last_seen"] is None:
            seen = "OFFLINE (never seen)"
        if r.get("machine") is None:
            table.append([r["node"], seen, "-", "", "", "", "", ""])
            continue
        table.append(
            [
                r["node"],
                seen,
                str(r["machine"]),
                str(r.get("state") or ""),
                ago(r.get("since")),
                str(r.get("seq") if r.get("seq") is not None else ""),
                str(r.get("last_transition") or ""),
                str(r.get("cause") or ""),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in table]
    return head + "\n" + "\n".join(lines)


# the parser ------------------------------------------------------------------------------------
def _connection(parser: Parser) -> None:
    parser.add_argument("--nats", dest="url", required=True, help="NATS URL")
    parser.add_argument("--credentials", type=path(exists=True), help="NATS .creds file")
    parser.add_argument("--bucket", default=DEFAULT_BUCKET, help=f"[default: {DEFAULT_BUCKET}]")


def _filters(parser: Parser) -> None:
    _connection(parser)
    parser.add_argument("--node", dest="node_glob", metavar="GLOB", help="only nodes matching GLOB")
    parser.add_argument("--machine", help="only this machine")
    parser.add_argument("--state", help="only machines in this state")
    parser.add_argument("--stale", action="store_true", help="only offline nodes")


def add_commands(commands: Subcommands) -> None:
    """``steward fleet status|watch|purge``: beside ``steward.cmd.fleet``'s commands."""

    p = command(commands, status)
    _filters(p)
    p.add_argument("--json", dest="as_json", action="store_true", help="one JSON document")

    p = command(commands, watch)
    _filters(p)

    p = command(commands, purge)
    p.add_argument("node", metavar="NODE")
    _connection(p)
