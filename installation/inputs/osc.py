"""OSC over UDP: a listening socket on its own thread, and the piece's state sent out at a rate.

In: one thread reads datagrams (with a short timeout, so closing is prompt), checks that each is
well-formed OSC (python-osc's parser pads a truncated argument with zeros: a cut-off `/decay 0.8`
would arrive as `/decay 0`), parses it with python-osc's packet parser (bundles included,
timetags ignored: live means now) and puts ("osc", address, args) on the inputs' queue. What the
addresses mean is decided on the loop's thread (live.py), from the mapping table. A datagram that
is not OSC is logged once and dropped.

A port that another program holds (or a host that does not resolve yet) is one log line; the
server keeps trying every RETRY_S, so OSC comes up as soon as the port is free. `bind()` alone
lets the caller find out at start and refuse to run instead (live.py, for a performer).

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

RETRY_S = 2.0                   # between attempts to listen on a port that is taken

_FIXED = {"i": 4, "f": 4, "c": 4, "r": 4, "m": 4, "h": 8, "t": 8, "d": 8, "T": 0, "F": 0, "N": 0, "I": 0,
          "[": 0, "]": 0}


def _string_end(data: bytes, at: int) -> int:
    """Where the padded OSC string starting at `at` ends; ValueError if it has no terminator."""
    nul = data.find(b"\0", at)
    if nul < 0:
        raise ValueError("a string without its terminating zero")
    return (nul + 4) & ~3


def malformed(data: bytes, depth: int = 0) -> str | None:
    """Why a datagram is not well-formed OSC 1.0 (a message or a bundle), or None if it is.

    Strict where python-osc is lenient: every argument must be there in full, nothing may follow
    the last one, type tags must be known, sizes must be multiples of four."""
    try:
        if len(data) == 0 or len(data) % 4:
            return f"{len(data)} bytes (OSC packets are a non-zero multiple of 4)"
        if data.startswith(b"#bundle\0"):
            if depth > 8:
                return "bundles nested too deep"
            at = 16
            if len(data) < at:
                return "a bundle without its timetag"
            while at < len(data):
                if at + 4 > len(data):
                    return "a bundle element without its size"
                size = int.from_bytes(data[at:at + 4], "big", signed=True)
                at += 4
                if size <= 0 or size % 4 or at + size > len(data):
                    return f"a bundle element of {size} bytes where {len(data) - at} remain"
                why = malformed(data[at:at + size], depth + 1)
                if why:
                    return why
                at += size
            return None
        if not data.startswith(b"/"):
            return "it does not start with an address or #bundle"
        at = _string_end(data, 0)
        if at == len(data):
            return None                                     # an address alone: no arguments
        if data[at:at + 1] != b",":
            return "no type tags after the address"
        end = _string_end(data, at)
        tags = data[at + 1:data.index(b"\0", at)].decode("ascii")
        at = end
        for tag in tags:
            if tag in _FIXED:
                at += _FIXED[tag]
            elif tag in "sS":
                if at >= len(data):
                    return "a string argument is missing"
                at = _string_end(data, at)
            elif tag == "b":
                if at + 4 > len(data):
                    return "a blob argument is missing"
                size = int.from_bytes(data[at:at + 4], "big", signed=True)
                if size < 0:
                    return "a blob of negative size"
                at += 4 + ((size + 3) & ~3)
            else:
                return f"unknown type tag {tag!r}"
            if at > len(data):
                return f"the arguments ({tags}) are cut off"
        if at != len(data):
            return f"{len(data) - at} bytes after the last argument"
        return None
    except (ValueError, UnicodeDecodeError) as e:
        return str(e)


def read_datagram(data: bytes) -> tuple[list[Message], str | None]:
    """The (address, args) messages of one datagram, a bundle's in order, and None; or [] and why
    it is not OSC. Never raises: a datagram is whatever anyone on the network sent."""
    from pythonosc.osc_packet import OscPacket
    why = malformed(data)
    if why is not None:
        return [], why
    try:
        return [(m.message.address, tuple(m.message.params)) for m in OscPacket(data).messages], None
    except Exception as e:             # ParseError and whatever a hostile datagram provokes
        return [], type(e).__name__


class OscServer:
    def __init__(self, host: str, port: int, post: Callable[[tuple], None]):
        self.host, self.requested_port = host, port
        self.post = post
        self.port: int | None = None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bad_logged = False
        self.error: OSError | None = None       # why the last attempt to listen failed

    def bind(self) -> bool:
        """Take the UDP port now (idempotent); False, with `error` set, when it cannot be had."""
        if self._sock is not None:
            return True
        sock = None
        try:
            info = socket.getaddrinfo(self.host, self.requested_port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(info[0], socket.SOCK_DGRAM)
            sock.bind(info[4])
        except OSError as e:
            if sock is not None:
                sock.close()
            self.error = e
            return False
        sock.settimeout(0.2)
        self._sock, self.error = sock, None
        self.port = sock.getsockname()[1]
        return True

    def start(self) -> bool:
        """Listen on the thread. True when listening now; False when the port is taken (one log
        line), in which case the thread keeps trying every RETRY_S."""
        listening = self.bind()
        if listening:
            log.info("OSC: listening on %s:%d", self.host, self.port)
        else:
            log.warning("OSC: cannot listen on %s:%d (%s): inputs.osc.port / inputs.osc.host; another program "
                        "(another Lapses?) may have the port. The piece runs on without OSC in, trying again "
                        "every %g s", self.host, self.requested_port, self.error, RETRY_S)
        self._thread = threading.Thread(target=self._run, name="lapses-osc-in", daemon=True)
        self._thread.start()
        return listening

    def _run(self) -> None:
        while self._sock is None:
            if self._stop.wait(RETRY_S):
                return
            if self.bind():
                log.info("OSC: listening on %s:%d (the port is free now)", self.host, self.port)
        while not self._stop.is_set():
            try:
                data, _ = self._sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            messages, why = read_datagram(data)
            if why is not None:
                if not self._bad_logged:
                    self._bad_logged = True
                    log.warning("OSC: ignored a datagram that is not OSC (%.120s); further ones are "
                                "ignored silently", why)
                continue
            for address, args in messages:
                self.post(("osc", address, args))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None


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
