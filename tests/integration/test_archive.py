"""archive: a real HTTP server (aiohttp) and a real nats-server's object store serve tarballs;
the watcher installs good ones and refuses bad ones, leaving the previous version in place;
in a real daemon, an installed machine is picked up by hot reload."""

from __future__ import annotations

import asyncio
import base64
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from aiohttp import web

from steward.broker.connection import NatsConnection
from steward.broker.settings import NatsSettings
from steward.daemon.config import Config
from steward.daemon.server import Daemon, ExitCode
from steward.watchers.archive import ArchiveWatcher
from steward.watchers.base import Outcome, WatcherResult
from tests.support.fakes import fake_context
from tests.support.machines import Handle, parse
from tests.support.nats_server import NatsServer
from tests.support.tarballs import App, Entry, app, sha256

V1 = app("app", {"machine.yaml": b"name: v1\n", "run.sh": b"#!/bin/sh\necho v1\n"})
V2 = app("app", {"machine.yaml": b"name: v2\n"})


class Files:
    """What the test web server serves: path → bytes, and how."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append((name, request.headers.get("Authorization")))
        body = self.bodies.get(name)
        if body is None:
            raise web.HTTPNotFound()
        if name == "private.tgz":
            want = "Basic " + base64.b64encode(b"bob:secret").decode()
            if request.headers.get("Authorization") != want:
                raise web.HTTPUnauthorized()
        if name not in self.truncate:
            return web.Response(body=body)
        response = web.StreamResponse()
        response.content_length = len(body)  # promised, not delivered
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        assert request.transport is not None
        request.transport.close()
        return response


@pytest.fixture
async def files() -> AsyncIterator[tuple[Files, str]]:
    served = Files()
    application = web.Application()
    application.router.add_get("/{name}", served.handle)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield served, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def watcher(tmp_path: Path, source: str, archive: App, *extra: str) -> ArchiveWatcher:
    props = [
        f"source: {source}",
        f"checksum: {archive.checksum}",
        "target: machines",
        "creates: app",
        "verify: SHA256SUMS",
        f"verify_checksum: {archive.sums_checksum}",
        *extra,
    ]
    body = "".join(f"      {p}\n" for p in props)
    spec = parse(
        "name: m\nversion: 1.0.0\ninitial_state: a\n"
        "transitions: [{name: go, from: [a], destination: b}]\n"
        f"watchers:\n  - name: dl\n    type: archive\n    success_transition: go\n"
        f"    properties:\n{body}"
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    w = ArchiveWatcher(spec.watchers[0], Handle(tmp_path), fake_context(scratch))
    return w


def installed(tmp_path: Path) -> str:
    return (tmp_path / "machines" / "app" / "machine.yaml").read_text()


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "machines").iterdir()) + sorted(
        p.name for p in (tmp_path / "scratch").iterdir()
    )


async def install_v1(tmp_path: Path, url: str, served: Files) -> None:
    served.bodies["v1.tgz"] = V1.data
    result = await watcher(tmp_path, f"{url}/v1.tgz", V1).check()
    assert result.outcome is Outcome.SUCCESS, result.detail
    assert result.payload["state"] == "downloaded"
    assert installed(tmp_path) == "name: v1\n"


async def test_installs_then_verifies_without_downloading_again(
    tmp_path: Path, files: tuple[Files, str]
) -> None:
    served, url = files
    await install_v1(tmp_path, url, served)
    assert (tmp_path / "machines" / "app" / "run.sh").read_text() == "#!/bin/sh\necho v1\n"
    again = await watcher(tmp_path, f"{url}/v1.tgz", V1).check()
    assert (again.outcome, again.payload["state"]) == (Outcome.SUCCESS, "verified")
    assert len(served.requests) == 1  # verified in place: no second download
    (tmp_path / "machines" / "app" / "run.sh").write_text("tampered")
    repaired = await watcher(tmp_path, f"{url}/v1.tgz", V1).check()
    assert repaired.payload["state"] == "downloaded" and len(served.requests) == 2
    assert (tmp_path / "machines" / "app" / "run.sh").read_text() == "#!/bin/sh\necho v1\n"
    assert leftovers(tmp_path) == ["app"]


def hostile(name: str) -> App:
    if name == "dotdot":
        return app("app", {"machine.yaml": b"bad"}, Entry("../escaped", content=b"x"))
    return app("app", {"machine.yaml": b"bad"}, Entry("app/l", tarfile.SYMTYPE, link="/etc"))


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("wrong-checksum", "checksum mismatch: got "),
        ("truncated", "truncated download"),
        ("missing", "download failed: HTTP 404"),
        ("dotdot", "refused member '../escaped': path leaves the archive"),
        ("symlink", "refused member 'app/l': a symbolic link (to '/etc')"),
    ],
)
async def test_a_bad_update_is_refused_and_the_previous_version_stays(
    tmp_path: Path, files: tuple[Files, str], case: str, why: str
) -> None:
    served, url = files
    await install_v1(tmp_path, url, served)
    (tmp_path / "machines" / "app" / "machine.yaml").write_text("drifted")  # forces a download
    update = hostile(case) if case in ("dotdot", "symlink") else V2
    if case != "missing":
        served.bodies[f"{case}.tgz"] = update.data
    if case == "truncated":
        served.truncate.add("truncated.tgz")
    checksum = "0" * 64 if case == "wrong-checksum" else update.checksum
    w = watcher(
        tmp_path,
        f"{url}/{case}.tgz",
        App(update.data, checksum, update.sums_checksum),
    )
    result = await w.check()
    assert (result.outcome, result.payload["state"]) == (Outcome.ERROR, "error")
    assert why in result.detail
    assert installed(tmp_path) == "drifted"  # the previous version, untouched
    assert leftovers(tmp_path) == ["app"]
    assert not (tmp_path / "escaped").exists()


async def test_basic_auth(tmp_path: Path, files: tuple[Files, str]) -> None:
    served, url = files
    served.bodies["private.tgz"] = V1.data
    denied = await watcher(tmp_path, f"{url}/private.tgz", V1).check()
    assert "HTTP 401" in denied.detail
    auth = ("username: bob", "password: secret")
    result = await watcher(tmp_path, f"{url}/private.tgz", V1, *auth).check()
    assert result.outcome is Outcome.SUCCESS, result.detail


async def test_a_download_over_max_size_is_refused(
    tmp_path: Path, files: tuple[Files, str]
) -> None:
    served, url = files
    served.bodies["v1.tgz"] = V1.data
    result = await watcher(tmp_path, f"{url}/v1.tgz", V1, "max_size: 100").check()
    assert result.outcome is Outcome.ERROR
    assert "download larger than max_size (100 bytes)" in result.detail


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "js", tmp_path / "nats.log")
    server.start()
    yield server
    server.close()


async def test_nats_object_store_source(tmp_path: Path, server: NatsServer) -> None:
    nc = await nats.connect(server.url)
    try:
        store = await nc.jetstream().create_object_store("FLEET")
        await store.put("app-1.tgz", V1.data)
    finally:
        await nc.close()
    link = NatsConnection(NatsSettings(servers=(server.url,)))
    link.start()
    try:
        w = watcher(tmp_path, "nats-object://FLEET/app-1.tgz", V1)
        w = ArchiveWatcher(w.spec, w.machine, fake_context(tmp_path / "scratch", nats=link))
        result = await w.check()
        assert result.outcome is Outcome.SUCCESS, result.detail
        assert installed(tmp_path) == "name: v1\n"
        w2 = watcher(tmp_path, "nats-object://FLEET/nope.tgz", V2)
        w2 = ArchiveWatcher(w2.spec, w2.machine, fake_context(tmp_path / "scratch", nats=link))
        (tmp_path / "machines" / "app" / "SHA256SUMS").unlink()
        missing = await w2.check()
        assert missing.outcome is Outcome.ERROR
        assert "no object 'nope.tgz' in object store 'FLEET'" in missing.detail
    finally:
        await link.stop()


async def test_without_nats_an_object_source_fails_cleanly(tmp_path: Path) -> None:
    result: WatcherResult = await watcher(tmp_path, "nats-object://FLEET/app.tgz", V1).check()
    assert result.outcome is Outcome.ERROR
    assert "no NATS is configured" in result.detail


async def test_nats_down_is_an_error_and_the_next_run_recovers(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "js", tmp_path / "nats.log")  # a free port; not started yet
    link = NatsConnection(NatsSettings(servers=(server.url,)))
    link.start()
    try:
        w = watcher(tmp_path, "nats-object://FLEET/app-1.tgz", V1)
        w = ArchiveWatcher(w.spec, w.machine, fake_context(tmp_path / "scratch", nats=link))
        down = await w.check()  # waits for NATS up to the timeout (5s, Choria's minimum)
        assert down.outcome is Outcome.ERROR
        assert down.detail == "download timed out after 5s: NATS is not connected"
        server.start()
        nc = await nats.connect(server.url)
        try:
            store = await nc.jetstream().create_object_store("FLEET")
            await store.put("app-1.tgz", V1.data)
        finally:
            await nc.close()
        result = await w.check()
        assert result.outcome is Outcome.SUCCESS, result.detail
        assert installed(tmp_path) == "name: v1\n"
    finally:
        await link.stop()
        server.close()


APP_MACHINE = b"""\
name: app
version: 1.0.0
initial_state: ready
transitions:
  - {name: go, from: [ready], destination: done}
"""


async def test_a_daemon_installs_a_machine_and_hot_reload_starts_it(
    tmp_path: Path, files: tuple[Files, str]
) -> None:
    served, url = files
    bundle = app("app", {"machine.yaml": APP_MACHINE})
    served.bodies["app.tgz"] = bundle.data
    base = Path(tempfile.mkdtemp(prefix="ar-", dir="/tmp"))  # short: the socket path is bound
    machines = base / "machines"
    machines.mkdir()
    (machines / "manager.yaml").write_text(
        "name: manager\nversion: 1.0.0\ninitial_state: MANAGE\n"
        "transitions: [{name: installed, from: [MANAGE], destination: DONE}]\n"
        "watchers:\n  - name: download\n    type: archive\n    success_transition: installed\n"
        f"    properties:\n      source: {url}/app.tgz\n      checksum: {bundle.checksum}\n"
        "      target: .\n      creates: app\n      verify: SHA256SUMS\n"
        f"      verify_checksum: {bundle.sums_checksum}\n"
    )
    config = Config(node="n1", machines_dir=machines, state_dir=base / "state", metrics_listen=None)
    daemon = Daemon(config)
    task = asyncio.ensure_future(daemon.serve())
    try:
        async with asyncio.timeout(20):
            while "app" not in daemon.node.machines:
                await asyncio.sleep(0.02)
        assert daemon.node.get("manager").state == "DONE"
        assert daemon.node.get("app").state == "ready"
        assert sha256((machines / "app" / "machine.yaml").read_bytes()) == sha256(APP_MACHINE)
        assert sorted(p.name for p in machines.iterdir()) == ["app", "manager.yaml"]
    finally:
        daemon.request_exit()
        async with asyncio.timeout(20):
            assert await task is ExitCode.OK
        shutil.rmtree(base, ignore_errors=True)
