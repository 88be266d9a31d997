"""Telling systemd that the piece is alive: the sd_notify datagram protocol, without a dependency.

Why it exists: under the user unit (`Type=notify`, `WatchdogSec=`, see service.py) systemd waits
for READY=1 before it counts the piece as started, and kills and restarts it when WATCHDOG=1 stops
arriving. The app pings only after a frame has actually been presented, so a hung render loop,
a stuck driver or a deadlock all end in a restart instead of a frozen picture on the wall.

The protocol is one datagram of `KEY=value` lines to the unix socket named in $NOTIFY_SOCKET
(a leading '@' means Linux's abstract namespace). $WATCHDOG_USEC says how often systemd expects
a ping; $WATCHDOG_PID, when set, names the one process that should send it. Sending never
blocks and never raises: a missing supervisor must not stop the show.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Mapping

log = logging.getLogger("lapses.kiosk")


def _address(text: str) -> str | bytes | None:
    if text.startswith("@"):
        return b"\0" + text[1:].encode()      # abstract socket: a NUL byte, then the name
    if text.startswith("/"):
        return text
    return None                               # vsock:… and others: not for a desktop kiosk


class Notifier:
    """sd_notify for one process: READY, WATCHDOG at systemd's pace, STATUS, STOPPING."""

    def __init__(self, address: str = "", watchdog_s: float | None = None):
        self.address_text = address
        self.address = _address(address) if address else None
        if address and self.address is None:
            log.warning("NOTIFY_SOCKET=%s: only unix socket paths and @abstract names are supported; "
                        "systemd will not hear from the piece", address)
        self.watchdog_s = watchdog_s
        self._sock: socket.socket | None = None
        self._complained = False
        self._next_ping = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Notifier":
        environ = os.environ if environ is None else environ
        watchdog_s = None
        usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog_s = int(usec) / 1e6
        return cls(environ.get("NOTIFY_SOCKET", ""), watchdog_s)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def ping_every_s(self) -> float | None:
        """Half of systemd's timeout, as sd_watchdog_enabled(3) recommends."""
        return None if self.watchdog_s is None else self.watchdog_s / 2

    def send(self, *lines: str) -> bool:
        """One datagram of KEY=value lines; whether it went out."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)      # a full queue drops a ping; it never stalls a frame
            self._sock.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
        except OSError as e:
            if not self._complained:
                log.warning("could not notify systemd at %s (%s)", self.address_text, e)
                self._complained = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")

    def ping_due(self, now: float) -> bool:
        every = self.ping_every_s
        return every is not None and now >= self._next_ping

    def watchdog(self, now: float, *extra: str) -> bool:
        """WATCHDOG=1 (and any extra lines) if one is due at monotonic time `now`."""
        if not self.ping_due(now):
            return False
        self._next_ping = now + self.ping_every_s
        return self.send("WATCHDOG=1", *extra)

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
