"""The daemon: startup → main loop → shutdown, like uvicorn's ``serve()``.

Signal handlers only set flags. SIGTERM/SIGINT stop gracefully within ``shutdown_timeout``;
a second one forces the stop. SIGHUP rescans the machines directory (and re-reads the facts).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import random
import signal
import time
from enum import IntEnum
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from steward import __version__
from steward.broker.connection import NatsConnection
from steward.broker.link import NoNats
from steward.clock import Clock, SystemClock
from steward.daemon import heap
from steward.daemon.api import ControlSocket
from steward.daemon.config import Config
from steward.daemon.facts import FactsFile
from steward.daemon.loader import LoadReport, SpecCache, display_path, load_directory
from steward.daemon.metrics import (
    MachineMetrics,
    MetricsServer,
    ReloadStats,
    StewardCollector,
    new_registry,
)
from steward.daemon.node import Node
from steward.daemon.notify import SystemdNotify
from steward.daemon.reaper import Reaper, pidfd_child_watcher
from steward.daemon.watch import MachinesWatch
from steward.errors import ConfigError, Problem, Severity, StoreError
from steward.events.formats import event_format
from steward.events.pipeline import event_pipeline
from steward.machine.discovery import MACHINE_FILE
from steward.machine.persistence import SqliteStore
from steward.machine.services import NodeServices
from steward.machine.spec import MachineSpec
from steward.processes import ProcessTable
from steward.watchers.context import Facts, NodeIdentity
from steward.watchers.docker_engines import DockerEngines
from steward.watchers.registry import WatcherRegistry, default_registry

if TYPE_CHECKING:
    from steward.fleet.reporter import FleetReporter

log = logging.getLogger("steward.daemon")


START_BATCH = 512  # machines started together (one store read and write) during a rescan
STATUS_REFRESH = 10.0  # seconds between systemd STATUS= updates when there is no watchdog


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    FORCED = 3


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        registry: WatcherRegistry | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        shutdown_timeout: float = 10.0,
        notify: SystemdNotify | None = None,
    ) -> None:
        self.config = config
        self.registry = registry or default_registry()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.shutdown_timeout = shutdown_timeout
        # sd_notify: readiness, status, reload, stop, watchdog (nothing without NOTIFY_SOCKET)
        self.notify = notify or SystemdNotify.from_environ(os.environ, os.getpid())
        self._notify_task: asyncio.Task[None] | None = None
        self._reload_requested = False  # a SIGHUP's rescan owes systemd a READY=1
        self.store = SqliteStore(
            config.database_path, config.outbox, history_keep=config.history_keep
        )
        # the daemon's one NATS connection (or its absence), shared by everything that needs it
        self.nats: NatsConnection | NoNats = (
            NatsConnection(
                config.nats, name=f"steward {config.node}", clock=self.clock, rng=self.rng
            )
            if config.nats.enabled
            else NoNats()
        )
        fmt = event_format(config.events_format, config.node, config.events_prefix)
        pipeline = event_pipeline(
            fmt,
            self.store,
            self.nats,
            stream=config.nats.stream,
            replicas=config.nats.replicas,
            limits=config.nats.limits,
            drain=config.drain,
            clock=self.clock,
            rng=self.rng,
        )
        self.events = pipeline.emitter
        self.publisher = pipeline.publisher
        self.processes = ProcessTable()  # what watchers' commands started, per machine
        # metrics: one registry per daemon; machines count what happens, the rest is read
        # from these live objects at scrape time
        self.reloads = ReloadStats()
        self.metrics_registry = new_registry()
        self.machine_metrics = MachineMetrics(self.metrics_registry)
        facts = Facts()  # shared by every watcher; refreshed from the file at each rescan
        self.facts_file = FactsFile(config.facts, facts, self.clock)
        self.node = Node(
            NodeServices(
                identity=NodeIdentity(config.node, facts),
                store=self.store,
                events=self.events,
                registry=self.registry,
                clock=self.clock,
                rng=self.rng,
                scratch_dir=config.state_dir / "tmp",
                nats=self.nats,
                docker=DockerEngines(),
                processes=self.processes,
                observer=self.machine_metrics,
                machines_dir=config.machines_dir,
                signing_key=config.signing_key,
            )
        )
        # the node's keys in the fleet bucket, when NATS is configured
        self.fleet: FleetReporter | None = None
        if config.nats.enabled and config.fleet.enabled:
            from steward.fleet.reporter import FleetReporter  # with NATS only (~0.1 MiB)

            self.fleet = FleetReporter(
                config.fleet_settings,
                node=config.node,
                machines=self.node.machines,
                nats=self.nats,
                clock=self.clock,
            )
            self.node.listeners.append(self.fleet)
        self.metrics_registry.register(
            StewardCollector(
                self.node.machines,
                clock=self.clock,
                outbox=self.store,
                events=self.events.local,
                reloads=self.reloads,
                nats=self.nats,
                publisher=self.publisher,
            )
        )
        self._metrics: MetricsServer | None = None
        self.metrics_error: str | None = None
        self.problems: list[Problem] = []
        self.started_at = 0.0
        self._api: ControlSocket | None = None
        self._lock: IO[str] | None = None
        self._should_exit = asyncio.Event()
        self._force_exit = asyncio.Event()
        self._specs = SpecCache()  # a rescan re-parses only the files whose bytes changed
        self.reaper = Reaper(self.processes)  # orphans of commands: reaped, killed at stop
        self._logged_problems: dict[str, tuple[str, tuple[Problem, ...]]] = {}
        self.watch = MachinesWatch(
            config.machines_dir, self.rescan, rescan_interval=config.rescan_interval
        )

    async def serve(self) -> ExitCode:
        self._install_signal_handlers()
        with pidfd_child_watcher():
            await self.startup()
            try:
                await self.main_loop()
            finally:
                forced = await self.shutdown()
        return ExitCode.FORCED if forced else ExitCode.OK

    # startup -------------------------------------------------------------------------------
    async def startup(self) -> None:
        cfg = self.config
        if self.notify.enabled:  # the watchdog is fed while the machines load, too
            self._notify_task = asyncio.create_task(self._notify_loop(), name="steward-notify")
        if not cfg.machines_dir.is_dir():
            raise ConfigError(f"machines directory {cfg.machines_dir} does not exist")
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_state_dir(cfg)
        _fresh_tmp(self.node.services.scratch_dir)
        if cfg.insecure_permissions:
            log.warning(
                "--insecure-permissions: machine files writable by others are accepted; "
                "use this for development only"
            )
        await self.store.open()
        self.reaper.start()  # before any command runs
        self._api = ControlSocket(self, cfg.socket_path)
        await self._api.start()
        await self._start_metrics()
        self.nats.start()  # connects in the background; machines never wait for it
        self.publisher.start()
        self.started_at = self.clock.time()
        t0 = time.monotonic()
        with heap.loading():
            await self.rescan()
        if self.fleet is not None:
            self.fleet.start()  # every machine loaded: their keys are written first
        await self.watch.start()  # hot reload: inotify plus the periodic full rescan
        self.notify.ready(self.summary())  # systemctl start returns now
        log.info(
            "steward started: %d machines running, %d rejected",
            len(self.node.machines),
            self._rejected_files(),
            extra={
                "node": cfg.node,
                "machines_dir": str(cfg.machines_dir),
                "state_dir": str(cfg.state_dir),
                "socket": str(cfg.socket_path),
                "metrics": self._metrics.listen if self._metrics is not None else None,
                "load_seconds": round(time.monotonic() - t0, 3),
                "version": __version__,
            },
        )

    async def _start_metrics(self) -> None:
        """Serve /metrics. A taken address is logged, not fatal: the machines matter more."""
        if self.config.metrics_listen is None:
            return
        host, port = self.config.metrics_listen
        server = MetricsServer(self.metrics_registry, host, port)
        try:
            await server.start()
        except OSError as exc:
            self.metrics_error = f"cannot listen on {server.listen}: {exc.strerror or exc}"
            log.error(
                "no metrics endpoint: %s; set metrics.listen or --metrics-listen",
                self.metrics_error,
                extra={"error": self.metrics_error},
            )
            return
        self._metrics = server
        log.info("metrics on http://%s/metrics", server.listen, extra={"metrics": server.listen})

    # main loop -----------------------------------------------------------------------------
    async def main_loop(self) -> None:
        """Machines, reloads and the API all run in their own tasks: wait for a stop."""
        await self._should_exit.wait()

    def request_exit(self) -> None:
        if self._should_exit.is_set():
            log.warning("second stop signal: forcing exit")
            self._force_exit.set()
        self._should_exit.set()

    def request_rescan(self) -> None:
        """SIGHUP (systemctl reload): systemd hears RELOADING=1 now, READY=1 after the rescan."""
        if not self._reload_requested:
            self._reload_requested = True
            self.notify.reloading()
        self.watch.wake()  # its one slot: never two rescans at once

    async def rescan(self) -> None:
        """Bring the running machines in line with the directory (``_rescan``); then tell
        systemd the new summary, and that a reload asked for before it began is done."""
        reload_done, self._reload_requested = self._reload_requested, False
        try:
            await self._rescan()
        finally:
            if reload_done:
                self.notify.ready(self.summary())
            else:
                self.notify.status(self.summary())

    async def _rescan(self) -> None:
        """Bring the running machines in line with the directory.

        New machines start; a machine whose file changed (checksum) is validated and
        replaced; an invalid new version leaves the old one running; a removed file stops
        its machine; an unchanged machine is never touched.
        """
        self.reloads.rescans += 1
        await self.facts_file.refresh()  # before machines start: their first runs see facts
        try:
            report = await asyncio.to_thread(
                partial(
                    load_directory,
                    self.config.machines_dir,
                    self.registry,
                    check_permissions=not self.config.insecure_permissions,
                    cache=self._specs,
                )
            )
        except OSError as exc:
            self.reloads.failures += 1
            log.error("cannot read machines directory: %s", exc, extra={"error": str(exc)})
            return
        fresh = self._log_problems(report)
        self.problems = report.problems
        self.reloads.rejected_files = len(report.rejected)
        await self._announce_failures(report, fresh)
        wanted = {s.name: s for s in report.specs}
        rejected_paths = set(report.rejected)
        stopped = 0  # machines stopped (replaced or removed)
        for name, machine in list(self.node.machines.items()):
            new = wanted.get(name)
            if new is not None and new.checksum == machine.spec.checksum:
                continue
            if new is None and machine.spec.path in rejected_paths:
                if display_path(machine.spec.path, self.config.machines_dir) in fresh:
                    log.warning(
                        "keeping the running version of %s: its new file is invalid",
                        name,
                        extra={"machine": name},
                    )
                continue
            stopped += 1
            if new is not None:
                try:
                    replacement = await self.node.replace(new)
                except StoreError as exc:
                    self.reloads.failures += 1
                    log.error(
                        "cannot start machine %s: %s",
                        name,
                        exc,
                        extra={"machine": name, "error": str(exc)},
                    )
                    continue
                self.reloads.reloaded += 1
                log.info(
                    "machine %s reloaded: %s -> %s, in state %s",
                    name,
                    machine.spec.version,
                    new.version,
                    replacement.state,
                    extra={"machine": name, "version": new.version, "state": replacement.state},
                )
                continue
            await self.node.remove(name)
            self.reloads.removed += 1
            self.machine_metrics.forget(name)
            log.info("machine stopped", extra={"machine": name, "version": machine.spec.version})
        if stopped:
            heap.machines_stopped()
        new_specs = [spec for name, spec in wanted.items() if name not in self.node.machines]
        for i in range(0, len(new_specs), START_BATCH):
            if self._should_exit.is_set():
                log.info("stop requested: not starting the remaining machines")
                break
            await self._start(new_specs[i : i + START_BATCH])
        log.debug(
            "machines directory rescanned",
            extra={"machines": len(self.node.machines), "rejected": len(report.rejected)},
        )

    async def _start(self, specs: list[MachineSpec]) -> None:
        """Start new machines together: one store read and one write for all of them."""
        try:
            machines = await self.node.add_all(specs)
        except StoreError as exc:
            self.reloads.failures += len(specs)
            for spec in specs:
                log.error(
                    "cannot start machine %s: %s",
                    spec.name,
                    exc,
                    extra={"machine": spec.name, "error": str(exc)},
                )
            return
        self.reloads.started += len(machines)
        for machine in machines:
            spec = machine.spec
            log.info(
                "machine %s %s in state %s",
                spec.name,
                "resumed" if machine.resumed else "started",
                machine.state,
                extra={
                    "machine": spec.name,
                    "version": spec.version,
                    "state": machine.state,
                    "path": str(spec.path),
                },
            )

    async def _announce_failures(self, report: LoadReport, fresh: set[str]) -> None:
        """A load_failed event per rejected file, once per content and problem set."""
        by_file: dict[str, list[Problem]] = {}
        for p in report.errors:
            if p.file in fresh:
                by_file.setdefault(p.file, []).append(p)
        self.reloads.rejected += len(by_file)
        for file, problems in by_file.items():
            name = Path(file).parent.name if Path(file).name == MACHINE_FILE else Path(file).stem
            await self.node.announce_load_failed(name or file, None, problems)

    def _log_problems(self, report: LoadReport) -> set[str]:
        """Log each file's problems once per content (checksum) and problem set: rescanning an
        unchanged broken file says nothing again. Returns the files logged now."""
        by_file: dict[str, list[Problem]] = {}
        for p in report.problems:
            by_file.setdefault(p.file, []).append(p)
        keys = {f: (report.checksums.get(f, ""), tuple(ps)) for f, ps in by_file.items()}
        fresh = {f for f, key in keys.items() if self._logged_problems.get(f) != key}
        self._logged_problems = keys
        for p in report.problems:
            if p.file in fresh:
                level = logging.ERROR if p.severity is Severity.ERROR else logging.WARNING
                log.log(level, "%s", p, extra={"file": p.file, "field": p.path, "error": p.message})
        return fresh

    # shutdown ------------------------------------------------------------------------------
    async def shutdown(self) -> bool:
        """Stop the API, the machines (killing their processes) and the store. True if forced."""
        forced = False
        self.notify.stopping()
        await self.watch.stop()  # lets a running rescan finish; no other starts
        if self._api is not None:
            await self._api.stop()
        if self._metrics is not None:
            await self._metrics.stop()
        stopping = asyncio.ensure_future(self.node.stop())
        force = asyncio.ensure_future(self._force_exit.wait())
        done, _ = await asyncio.wait(
            [stopping, force], timeout=self.shutdown_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        force.cancel()
        if stopping not in done:
            forced = True
            log.warning("machines did not stop in time; exiting anyway")
            stopping.cancel()
        await self.reaper.stop()  # kill and reap what commands left running
        # flush what NATS accepts in the time left; the rest stays in the outbox
        await self.publisher.stop(0 if forced else min(5.0, self.shutdown_timeout))
        if self.fleet is not None:
            await self.fleet.stop(0 if forced else min(2.0, self.shutdown_timeout))
        await self.nats.stop()
        await self.store.close()
        if self._lock is not None:
            self._lock.close()
        if self._notify_task is not None:
            self._notify_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notify_task
        self.notify.close()
        heap.released()
        log.info("steward stopped", extra={"node": self.config.node})
        return forced

    # systemd -------------------------------------------------------------------------------
    async def _notify_loop(self) -> None:
        """WATCHDOG=1 every half of WatchdogSec= from the event loop itself (a wedged loop stops
        pinging and systemd restarts the daemon), and STATUS= when it changed (NATS comes and
        goes between rescans)."""
        interval = self.notify.watchdog_interval or STATUS_REFRESH
        while True:
            self.notify.watchdog()
            if self.started_at:
                self.notify.status(self.summary())
            await asyncio.sleep(interval)

    def summary(self) -> str:
        """One line for systemctl status: machines running and rejected, NATS."""
        if not self.config.nats.enabled:
            nats = "no NATS configured"
        else:
            nats = "NATS connected" if self.nats.connected else "NATS not connected"
        return (
            f"{len(self.node.machines)} machines running, {self._rejected_files()} rejected; {nats}"
        )

    def _rejected_files(self) -> int:
        return len({p.file for p in self.problems if p.severity is Severity.ERROR})

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self.request_exit)
            loop.add_signal_handler(signal.SIGINT, self.request_exit)
            loop.add_signal_handler(signal.SIGHUP, self.request_rescan)

    # what the API shows --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """``GET /v1/status``: ``status_head``, the machines' statuses, ``status_tail``."""
        return {
            **self.status_head(),
            "machines": [m.status() for m in self.node.machines.values()],
            **self.status_tail(),
        }

    def status_head(self) -> dict[str, Any]:
        """The status before its ``machines`` (the API encodes those one by one)."""
        return {
            "node": self.config.node,
            "steward_version": __version__,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "machines_dir": str(self.config.machines_dir),
            "state_dir": str(self.config.state_dir),
        }

    def status_tail(self) -> dict[str, Any]:
        """The status after its ``machines``."""
        return {
            "events": self._events_status(),
            "metrics": {
                "listen": self._metrics.listen if self._metrics is not None else None,
                "error": self.metrics_error,
            },
            "reload": self.reloads.as_dict(),
            "fleet": self.fleet.status() if self.fleet is not None else None,
            "facts": self.facts_file.status(),
            "problems": [p.as_dict() for p in self.problems],
        }

    def _events_status(self) -> dict[str, Any]:
        stats = self.store.outbox_snapshot()
        return {
            "format": self.config.events_format,
            "emitted": self.events.local.emitted,
            "outbox": {
                "events": stats.events,
                "bytes": stats.bytes,
                "dropped": stats.dropped,
                "dropped_by_kind": dict(stats.dropped_by_kind),
            },
            "outbox_limits": {
                "max_events": self.config.outbox.max_events,
                "max_bytes": self.config.outbox.max_bytes,
            },
            "nats": self.publisher.status(),
        }


def _fresh_tmp(path: Path) -> Path:
    """The daemon's temp dir (``WATCHER_DATA`` files): emptied at start, so files a daemon
    killed with SIGKILL left behind do not pile up. Only after the state dir lock is held."""
    try:
        path.rmdir()  # empty or absent: the common case
    except FileNotFoundError:
        pass
    except OSError:
        import shutil  # it loads bz2 and lzma (~0.5 MiB resident): only when files were left

        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


def _lock_state_dir(config: Config) -> IO[str]:
    path = config.state_dir / "steward.lock"
    f = open(path, "a+")  # noqa: SIM115 - held open for the daemon's lifetime
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise ConfigError(
            f"another steward daemon (pid {pid}) is using state dir {config.state_dir}"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f
