"""``steward fleet``: keys, signed specifications and their publication for the machines and
plugins watchers (Choria's ``choria machine plugins pack|verify`` and ``mms keys``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.cmd.args import command, path
from steward.cmd.failure import fail
from steward.cmd.output import echo
from steward.fleet import keys
from steward.fleet.spec import Format, SpecError, decode, encode
from steward.fleet.state import DEFAULT_BUCKET

if TYPE_CHECKING:
    from steward.cmd.args import Subcommands

FORMATS = [f.value for f in Format]


def keygen(directory: Path) -> None:
    """Write an ed25519 key pair (fleet.seed, mode 0600, and fleet.public) into DIRECTORY."""
    try:
        private, public = keys.generate(directory)
    except (keys.KeyFileError, OSError) as exc:
        fail(str(exc))
    echo(f"private key {private}\npublic key  {public}: {public.read_text().strip()}")


def pack(
    source: Path,
    key: Path | None,
    fmt: str,
    source_url: str,
    matches: list[str] | None,
    governors: list[str] | None,
    output: Path | None,
) -> None:
    """Sign SOURCE: a JSON list of entries (as Choria's pack), or a DIR of machine directories,
    each packed into <name>.tar.gz (with SHA256SUMS) beside the spec."""
    seed = _seed(key)
    if source.is_dir():
        payload = _pack_directory(
            source,
            source_url,
            dict(_pair(m) for m in matches or ()),
            dict(_pair(g) for g in governors or ()),
            output,
        )
    else:
        payload = source.read_bytes()
        try:
            if not isinstance(json.loads(payload), list):
                fail(f"{source}: the specification must be a JSON list")
        except json.JSONDecodeError as exc:
            fail(f"{source}: invalid specification: {exc}")
    if seed is None:
        echo("steward: warning: no --key: the specification is not signed", err=True)
    spec = encode(payload, Format(fmt), seed)
    if output is None:
        echo(spec.decode())
    else:
        output.write_bytes(spec + b"\n")
        output.chmod(0o600)
        echo(f"wrote {output}")


def verify(
    spec_file: Path,
    public_key: str,
    fmt: str,
    facts_files: list[Path] | None,
    identity: str,
    as_json: bool,
) -> None:
    """Check SPEC as a node would, and show which entries match the given facts files."""
    from steward.expressions import ExpressionError
    from steward.fleet.matcher import matches

    try:
        spec = decode(spec_file.read_bytes(), Format(fmt))
        spec.verify(keys.public_key(public_key))
        entries = spec.entries()
    except (SpecError, keys.KeyFileError) as exc:
        fail(f"{spec_file}: {exc}")
    nodes = [(str(f), json.loads(f.read_text())) for f in facts_files or ()] or [("(no facts)", {})]
    rows: list[dict[str, Any]] = []
    for entry in entries:
        for where, facts in nodes:
            try:
                matched: bool | str = matches(entry.match, identity, facts)
            except ExpressionError as exc:
                matched = f"error: {exc}"
            rows.append(
                {"name": entry.name, "facts": where, "match": entry.match, "matched": matched}
            )
    if as_json:
        echo(json.dumps({"verified": True, "entries": rows}, indent=2))
        return
    echo(f"{spec_file}: signature verified, {len(entries)} entries")
    for row in rows:
        echo(f"  {row['name']:<24} {row['facts']:<24} {row['matched']}  {row['match']}")


def publish(
    spec_file: Path,
    url: str,
    credentials: str | None,
    bucket: str,
    kv_key: str,
    object_store: str,
    archives: Path | None,
) -> None:
    """Put SPEC into the KV key (and with --object-store, the .tar.gz in --archives)."""
    from steward.errors import ApiError

    uploads = (
        [(a.name, a.read_bytes()) for a in sorted(archives.glob("*.tar.gz"))] if archives else []
    )
    try:
        revision = asyncio.run(
            _publish(
                spec_file.read_bytes(), url, credentials, bucket, kv_key, object_store, uploads
            )
        )
    except (ApiError, OSError) as exc:
        fail(str(exc))
    echo(f"published {spec_file} to {bucket}.{kv_key} (revision {revision})")


async def _publish(
    spec: bytes,
    url: str,
    credentials: str | None,
    bucket: str,
    kv_key: str,
    object_store: str,
    uploads: list[tuple[str, bytes]],
) -> int:
    from nats.js.api import KeyValueConfig, ObjectStoreConfig
    from nats.js.errors import BucketNotFoundError

    from steward.cmd.connect import connect_nats
    from steward.errors import ApiError

    nc = await connect_nats(url, credentials, name="steward-fleet")
    try:
        js = nc.jetstream()
        if object_store and uploads:
            try:
                store = await js.object_store(object_store)
            except BucketNotFoundError:
                store = await js.create_object_store(config=ObjectStoreConfig(bucket=object_store))
            for name, content in uploads:
                await store.put(name, content)
        try:
            kv = await js.key_value(bucket)
        except BucketNotFoundError:
            kv = await js.create_key_value(config=KeyValueConfig(bucket=bucket))
        return int(await kv.put(kv_key, spec))
    except Exception as exc:  # nats-py raises many types: one line for the user
        raise ApiError(f"cannot publish: {type(exc).__name__}: {exc}") from exc
    finally:
        await nc.close()


def _seed(key: Path | None) -> bytes | None:
    if key is None:
        return None
    try:
        return keys.read_seed(key)
    except keys.KeyFileError as exc:
        fail(str(exc))


def _pair(text: str) -> tuple[str, str]:
    name, sep, expression = text.partition("=")
    if not sep or not name:
        fail(f"{text!r}: use NAME=VALUE (--match NAME=EXPRESSION, --governor NAME=GOVERNOR)")
    return name, expression


def _pack_directory(
    directory: Path,
    source_url: str,
    matches: dict[str, str],
    governors: dict[str, str],
    output: Path | None,
) -> bytes:
    from steward.fleet.pack import pack_machine

    out_dir = output.parent if output is not None else directory
    machines = sorted(d for d in directory.iterdir() if (d / "machine.yaml").is_file())
    if not machines:
        fail(f"{directory}: no machine directories (with a machine.yaml) in it")
    entries = []
    for machine in machines:
        packed = pack_machine(machine, out_dir)
        entry = {
            "name": packed.name,
            "source": f"{source_url}{packed.archive.name}",
            "verify": "SHA256SUMS",
            "verify_checksum": packed.verify_checksum,
            "checksum": packed.checksum,
        }
        if packed.name in matches:
            entry["match"] = matches[packed.name]
        governor = governors.get(packed.name, governors.get("*"))
        if governor:
            entry["governor"] = governor
        entries.append(entry)
    return json.dumps(entries, indent=2).encode()


def dashboard(listen: str, url: str, credentials: str | None, bucket: str) -> None:
    """Serve a live web page of the fleet: nodes, machines, states, graphs, history (read-only)."""
    from steward.errors import ApiError

    address = _listen_address(listen)
    try:
        asyncio.run(_dashboard(address, url, credentials, bucket))
    except (ApiError, OSError) as exc:
        fail(str(exc))


async def _dashboard(
    address: tuple[str, int],
    url: str,
    credentials: str | None,
    bucket: str,
    *,
    wait: float = 0.0,
    banner: str = "",
) -> None:
    """Serve until SIGINT/SIGTERM; ``wait``: seconds to wait for the bucket to appear."""
    import signal

    from steward.cmd.connect import connect_nats
    from steward.errors import ApiError
    from steward.fleet.dashboard import DashboardServer, FleetBroadcast
    from steward.fleet.feed import FleetFeed, open_bucket

    nc = await connect_nats(url, credentials, name="steward-dashboard")
    try:
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                kv = await open_bucket(nc.jetstream(), bucket)
                break
            except ApiError:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                await asyncio.sleep(0.2)  # the daemons create it as they connect
        server = DashboardServer(FleetBroadcast(FleetFeed(kv, nc.jetstream())), *address)
        try:
            await server.start()
        except OSError as exc:
            raise OSError(f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}") from exc
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        echo(f"steward fleet dashboard: {server.url} (bucket {bucket}); Ctrl-C stops it")
        if banner:
            echo(banner)
        try:
            await stopping.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await server.stop()
    finally:
        await nc.close()


def demo(machines: Path, listen: str) -> None:
    """A fleet on this box: nats-server (JetStream), three daemons (web1, web2, db1) on copies of
    MACHINES, and the dashboard; Ctrl-C stops everything."""
    from steward.errors import ApiError, ConfigError
    from steward.fleet.demo import FleetDemo

    address = _listen_address(listen)
    fleet_demo = FleetDemo(machines.resolve())
    try:
        echo(f"starting nats-server and {len(fleet_demo.nodes)} daemons in {fleet_demo.base}")
        fleet_demo.start()
        banner = (
            f"NATS {fleet_demo.nats_url}; try: steward fleet status --nats {fleet_demo.nats_url}\n"
            f"put web1 in maintenance: touch {fleet_demo.base}/web1/machines/maintenance/"
            "maintenance.flag"
        )
        asyncio.run(
            _dashboard(address, fleet_demo.nats_url, None, DEFAULT_BUCKET, wait=20.0, banner=banner)
        )
    except (ApiError, ConfigError, OSError) as exc:
        fail(str(exc))
    finally:
        echo("stopping the daemons and nats-server")
        fleet_demo.stop()


def _listen_address(text: str) -> tuple[str, int]:
    """``--listen HOST:PORT``, or a one-line error."""
    from steward.daemon.config import parse_listen

    try:
        address = parse_listen(text)
    except ValueError as exc:
        fail(f"--listen {exc}")
    if address is None:
        fail("--listen must be HOST:PORT")
    return address


# the parser ------------------------------------------------------------------------------------
def add_commands(commands: Subcommands) -> None:
    """``steward fleet keygen|pack|verify|publish|dashboard|demo``."""
    formats = "[default: plugins]"

    p = command(commands, keygen)
    p.add_argument("directory", type=path(file_okay=False, as_path=True), metavar="DIRECTORY")

    p = command(commands, pack)
    p.add_argument("source", type=path(exists=True, as_path=True), metavar="SOURCE")
    p.add_argument("--key", type=path(as_path=True), help="ed25519 private key (hex seed)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="plugins", help=formats)
    p.add_argument("--source-url", default="", help="DIR: archives' URL prefix (nats-object://B/)")
    p.add_argument(
        "--match",
        dest="matches",
        action="append",
        metavar="NAME=EXPR",
        help="DIR: an entry's match",
    )
    p.add_argument(
        "--governor",
        dest="governors",
        action="append",
        metavar="NAME=GOVERNOR",
        help="DIR: the governor an entry's nodes take a slot in to install it (NAME may be *)",
    )
    p.add_argument("--output", "-o", type=path(as_path=True), help="write the spec here")

    p = command(commands, verify)
    p.add_argument("spec_file", type=path(exists=True, as_path=True), metavar="SPEC")
    p.add_argument(
        "--public-key", required=True, help="hex ed25519 public key, or a file holding it"
    )
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="plugins", help=formats)
    p.add_argument(
        "--facts", dest="facts_files", action="append", type=path(exists=True, as_path=True)
    )
    p.add_argument("--identity", default="", help="the node name matched by identity()")
    p.add_argument("--json", dest="as_json", action="store_true")

    p = command(commands, publish)
    p.add_argument("spec_file", type=path(exists=True, as_path=True), metavar="SPEC")
    p.add_argument("--nats", dest="url", required=True, help="NATS URL")
    p.add_argument("--credentials", type=path(exists=True), help="NATS credentials file")
    p.add_argument("--bucket", default="MACHINES", help="[default: MACHINES]")
    p.add_argument("--key", dest="kv_key", default="spec", help="[default: spec]")
    p.add_argument("--object-store", default="", help="also upload DIR's archives to this store")
    p.add_argument("--archives", type=path(exists=True, file_okay=False, as_path=True))

    p = command(commands, dashboard)
    p.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        help="HOST:PORT to serve the page on (port 0: a free one)  [default: 127.0.0.1:8080]",
    )
    p.add_argument("--nats", dest="url", required=True, help="NATS URL")
    p.add_argument("--credentials", type=path(exists=True), help="NATS credentials file")
    p.add_argument(
        "--bucket", default=DEFAULT_BUCKET, help=f"the fleet KV bucket  [default: {DEFAULT_BUCKET}]"
    )

    p = command(commands, demo)
    p.add_argument(
        "--machines",
        type=path(file_okay=False, as_path=True),
        default="machines",
        help="the machines each node runs (a copy each)  [default: machines]",
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        help="the dashboard's HOST:PORT  [default: 127.0.0.1:8080]",
    )
