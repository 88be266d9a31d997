"""OSC over UDP: a listening socket on its own thread, and the piece's state sent out at a rate.

In: one thread reads datagrams (with a short timeout, so closing is prompt), parses them with
python-osc's packet parser (bundles included, timetags ignored: live means now) and puts
("osc", address, args) on the inputs' queue. What the addresses mean is decided on the loop's
thread (live.py), from the mapping table. A datagram that is not OSC is logged once and dropped.

Out: the loop offers the newest state (a handful of messages) each frame; a sender thread sends
the latest one `send_rate_hz` times a second to `send_to`, so a slow network or a name lookup can
never hold up a frame, and sound and lighting rigs can follow the illness.
"""
from __future__ import annotations

import logging
import socket
import threading
from typing import Callable, Sequence

log = logging.getLogger("lapses.osc")

Message = tuple[str, tuple]


class OscServer:
    def __init__(self, host: str, port: int, post: Callable[[tuple], None]):
        self.host, self.requested_port = host, port
        self.post = post
        self.port: int | None = None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bad_logged = False

    def start(self) -> bool:
        try:
            info = socket.getaddrinfo(self.host, self.requested_port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(info[0], socket.SOCK_DGRAM)
            sock.bind(info[4])
        except OSError as e:
            log.warning("OSC: cannot listen on %s:%d (%s); the piece runs on without OSC in",
                        self.host, self.requested_port, e)
            return False
        sock.settimeout(0.2)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="lapses-osc-in", daemon=True)
        self._thread.start()
        log.info("OSC: listening on %s:%d", self.host, self.port)
        return True

    def _run(self) -> None:
        from pythonosc.osc_packet import OscPacket
        while not self._stop.is_set():
            try:
                data, _ = self._sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                messages = [(m.message.address, tuple(m.message.params)) for m in OscPacket(data).messages]
            except Exception as e:             # ParseError and whatever a hostile datagram provokes
                if not self._bad_logged:
                    self._bad_logged = True
                    log.warning("OSC: ignored a datagram that is not OSC (%s); further ones are ignored silently",
                                type(e).__name__)
                continue
            for address, args in messages:
                self.post(("osc", address, args))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()


class OscSender:
    """Sends the latest offered state to host:port at a fixed rate, from its own thread."""

    def __init__(self, host: str, port: int, rate_hz: float):
        self.host, self.port, self.period_s = host, port, 1.0 / rate_hz
        self._latest: Sequence[Message] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lapses-osc-out", daemon=True)
        self._thread.start()

    def offer(self, messages: Sequence[Message]) -> None:
        with self._lock:
            self._latest = messages

    def _run(self) -> None:
        from pythonosc.udp_client import SimpleUDPClient
        client = None
        failed = False
        while not self._stop.wait(self.period_s):
            if client is None:      # a name that does not resolve yet (the network comes up after us): retry
                try:
                    client = SimpleUDPClient(self.host, self.port)
                except (OSError, ValueError) as e:
                    if not failed:
                        log.warning("OSC: cannot send the state to %s:%d (%s); still trying", self.host, self.port, e)
                    failed = True
                    continue
            with self._lock:
                messages, self._latest = self._latest, None
            if not messages:
                continue
            try:
                for address, args in messages:
                    client.send_message(address, list(args))
                self.sent += 1
                failed = False
            except OSError as e:               # unreachable for now: say so once, keep trying
                if not failed:
                    log.warning("OSC: sending the state to %s:%d failed (%s); still trying", self.host, self.port, e)
                failed = True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
