"""systemd's notification protocol (sd_notify(3)): readiness, status, reload, stop and watchdog.

Under a ``Type=notify`` unit systemd sets ``NOTIFY_SOCKET`` to a Unix datagram socket: an
absolute path, or ``@name`` for the abstract namespace (a leading NUL byte). Each message is one
datagram of newline-separated ``KEY=value`` assignments (``READY=1``, ``STATUS=…``,
``RELOADING=1``, ``STOPPING=1``, ``WATCHDOG=1``). With ``WatchdogSec=`` it also sets
``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, which must be ours): a ``WATCHDOG=1`` is owed at
least that often, and the daemon sends one every half of it from its event loop, so a wedged
loop stops pinging and systemd restarts it.

Without ``NOTIFY_SOCKET`` every call does nothing. Sending never blocks and never raises: a
lost notification must not stop the daemon (systemd then reports the start as timed out).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("steward.daemon.notify")


class SystemdNotify:
    """One daemon's notifications. ``address`` is ``NOTIFY_SOCKET`` as systemd gives it."""

    def __init__(self, address: str | None = None, *, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        self._status = ""
        self._failed = False  # the first failure is logged, the rest are not

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int) -> SystemdNotify:
        address = environ.get("NOTIFY_SOCKET") or None
        if address is not None and not address.startswith(("/", "@")):
            log.warning(
                "NOTIFY_SOCKET %r is neither a path nor @abstract: systemd is not notified",
                address,
                extra={"notify_socket": address},
            )
            address = None
        return cls(address, watchdog_usec=_watchdog_usec(environ, pid))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two ``WATCHDOG=1`` (half of ``WATCHDOG_USEC``), or None."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    # the messages ------------------------------------------------------------------------------
    def ready(self, status: str) -> None:
        """Startup (or a reload) is complete: the machines are loaded and the API answers."""
        self._status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """What ``systemctl status`` shows; sent only when it changed."""
        if status != self._status:
            self._status = status
            self.send(f"STATUS={status}")

    def reloading(self) -> None:
        """A reload began; ``ready()`` ends it. MONOTONIC_USEC is what systemd 253+ wants with
        it (``Type=notify-reload``); older versions ignore it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> None:
        if self.watchdog_usec is not None:
            self.send("WATCHDOG=1")

    # the protocol ------------------------------------------------------------------------------
    def send(self, *assignments: str) -> bool:
        """One datagram; False when it could not be sent (or there is nowhere to send it)."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        message = ("\n".join(assignments) + "\n").encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)  # a full queue drops the message, never waits
            self._socket.sendto(message, target)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning(
                    "cannot notify systemd at %s: %s",
                    self.address,
                    exc,
                    extra={"notify_socket": self.address, "error": str(exc)},
                )
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    """``WATCHDOG_USEC`` when it is meant for us (``WATCHDOG_PID`` unset or ``pid``)."""
    watchdog_pid = environ.get("WATCHDOG_PID")
    if watchdog_pid and watchdog_pid != str(pid):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None
