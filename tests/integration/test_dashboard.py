"""The fleet dashboard in a real headless browser (Debian's chromium through Selenium), over a
real nats-server and three real daemons (subprocesses, distinct node names) writing the fleet
bucket: the page lists the three nodes' machines with their states, shows a transition within
a couple of seconds, marks a daemon killed with kill -9 offline after the timeout, and draws a
machine's graph with its current state highlighted beside its history with causes. The last
picture is saved as ``build/dashboard.png`` (a CI artifact).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from steward.fleet.state import OFFLINE_GRACE
from tests.support.browser import headless_chromium, wait_for
from tests.support.daemon import Daemon
from tests.support.fleet import HEARTBEAT, Fleet
from tests.support.nats_server import NatsServer, running_nats

pytestmark = pytest.mark.e2e

NODES = ("web1", "web2", "db1")
SCREENSHOT = Path(__file__).resolve().parents[2] / "build" / "dashboard.png"


class DashboardThread:
    """``steward fleet dashboard`` in process: its own event loop in a thread, on a free port."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready: Future[str] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))

    def start(self) -> None:
        self._thread.start()
        self.url = self._ready.result(timeout=20)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        self._loop.close()

    async def _main(self) -> None:
        from steward.cmd.connect import connect_nats
        from steward.fleet.dashboard import DashboardServer, FleetBroadcast
        from steward.fleet.feed import FleetFeed, open_bucket

        self._stop = asyncio.Event()
        try:
            nc = await connect_nats(self.nats_url, None, name="dashboard-test")
            kv = await open_bucket(nc.jetstream())
            server = DashboardServer(FleetBroadcast(FleetFeed(kv, nc.jetstream())), "127.0.0.1", 0)
            await server.start()
        except BaseException as exc:
            self._ready.set_exception(exc)
            raise
        self._ready.set_result(server.url)
        try:
            await self._stop.wait()
        finally:
            await server.stop()
            await nc.close()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    yield from running_nats(tmp_path)


@pytest.fixture
def daemons(tmp_path: Path, nats_server: NatsServer) -> Iterator[dict[str, Daemon]]:
    fleet = Fleet(tmp_path, nats_server, NODES)
    try:
        fleet.start()
        yield fleet.daemons
    finally:
        fleet.cleanup()


@pytest.fixture
def dashboard(nats_server: NatsServer, daemons: dict[str, Daemon]) -> Iterator[DashboardThread]:
    # the daemons create the bucket; the dashboard reads it once it is there
    for node, daemon in daemons.items():
        daemon.wait_machine("probe", lambda m: m["state"] == "passing", what=f"{node} probe")
    server = DashboardThread(nats_server.url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from headless_chromium()


ROWS_JS = "return [...document.querySelectorAll('#rows tr')].map((tr) => ({...tr.dataset}));"


def rows(driver: Any) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["node"], r["machine"]): r for r in driver.execute_script(ROWS_JS)}


def texts(driver: Any, css: str) -> list[str]:
    """The text of every element ``css`` selects, read in one step (the page rewrites cells
    as heartbeats arrive, so an element found in one call may be gone in the next)."""
    script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText);"
    found: list[str] = driver.execute_script(script, css)
    return found


def row_is(driver: Any, node: str, machine: str, **want: str) -> bool:
    row = rows(driver).get((node, machine))
    return row is not None and all(row.get(k) == v for k, v in want.items())


def test_the_dashboard_shows_the_fleet_live(
    dashboard: DashboardThread, daemons: dict[str, Daemon], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(dashboard.url)
    expected = {(n, m): s for n in NODES for m, s in (("switch", "down"), ("probe", "passing"))}

    def all_rows(driver: Any) -> bool:
        now = rows(driver)
        got = {k: r["state"] for k, r in now.items()}
        return got == expected and all(r["online"] == "true" for r in now.values())

    wait_for(browser, "the three nodes' machines, online, in their states", all_rows)
    assert browser.find_element(By.ID, "link").text == "live"
    summary = browser.find_element(By.ID, "summary").text
    assert summary.startswith("3 nodes (3 online, 0 offline), 6 machines"), summary

    # a transition on a node reaches the page within a couple of seconds, with its cause
    fired = time.monotonic()
    daemons["web2"].transition("switch", "turn_up")
    wait_for(browser, "web2 switch up", lambda d: row_is(d, "web2", "switch", state="up"), 5)
    assert time.monotonic() - fired < 2.0
    cells = texts(browser, '#rows tr[data-node="web2"][data-machine="switch"] td')
    assert cells[5:7] == ["turn_up", "manual"]

    # filters: a glob over node names, a state, offline only
    search = browser.find_element(By.ID, "search")
    search.send_keys("web*")
    wait_for(browser, "only web nodes", lambda d: {n for n, _ in rows(d)} == {"web1", "web2"})
    search.clear()
    search.send_keys("up")
    wait_for(browser, "only the machine that is up", lambda d: set(rows(d)) == {("web2", "switch")})
    search.clear()
    wait_for(browser, "every row back", lambda d: len(rows(d)) == 6)

    # a machine's panel: its graph with the current state highlighted, its history with causes
    browser.find_element(
        By.CSS_SELECTOR, '#rows tr[data-node="web2"][data-machine="switch"]'
    ).click()
    current = wait_for(
        browser,
        "the graph of web2's switch",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#graph svg .state-node.current"),
    )
    assert [g.get_attribute("data-state") for g in current] == ["up"]
    states = browser.find_elements(By.CSS_SELECTOR, "#graph svg .state-node")
    assert {g.get_attribute("data-state") for g in states} == {"down", "up", "maintenance"}
    arrows = browser.find_elements(By.CSS_SELECTOR, "#graph svg .edge")
    assert len(arrows) == 5  # one per (from, to) pair
    first = texts(browser, '#history li[data-transition="turn_up"]')
    assert len(first) == 1 and "down → up" in first[0] and "manual" in first[0], first

    # the highlight follows the machine
    daemons["web2"].transition("switch", "maintain")
    wait_for(
        browser,
        "maintenance highlighted",
        lambda d: (
            [
                g.get_attribute("data-state")
                for g in d.find_elements(By.CSS_SELECTOR, "#graph svg .state-node.current")
            ]
            == ["maintenance"]
        ),
        5,
    )

    # a watcher's cause: outcome and the result's summary (the exec's exit code)
    browser.find_element(By.CSS_SELECTOR, '#rows tr[data-node="db1"][data-machine="probe"]').click()
    (entry,) = wait_for(
        browser,
        "db1 probe's history",
        lambda d: texts(d, '#detail[data-node="db1"] #history li[data-transition="passed"]'),
    )
    assert "watcher check" in entry
    assert "exec success" in entry
    assert "exit_code=0" in entry

    # a daemon killed with kill -9 is marked offline once 2 x heartbeat + grace passed
    daemons["web1"].kill9()
    killed = time.monotonic()
    timeout = 2 * HEARTBEAT + OFFLINE_GRACE
    wait_for(
        browser,
        "web1 offline",
        lambda d: all(row_is(d, "web1", m, online="false") for m in ("switch", "probe")),
        timeout + 5,
    )
    assert time.monotonic() - killed > timeout - HEARTBEAT - 1.0
    status = texts(browser, '#rows tr[data-node="web1"] td.status')[0]
    assert status.startswith("offline") and "last seen" in status, status
    browser.find_element(By.ID, "offline-only").click()
    wait_for(browser, "only web1's rows", lambda d: {n for n, _ in rows(d)} == {"web1"})
    browser.find_element(By.ID, "offline-only").click()
    wait_for(browser, "every row back", lambda d: len(rows(d)) == 6)
    assert all(r["online"] == "true" for (n, _), r in rows(browser).items() if n != "web1")

    browser.find_element(
        By.CSS_SELECTOR, '#rows tr[data-node="web2"][data-machine="switch"]'
    ).click()
    wait_for(
        browser,
        "web2's panel",
        lambda d: d.find_elements(By.CSS_SELECTOR, '#detail[data-node="web2"] #graph svg'),
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logs, logs
