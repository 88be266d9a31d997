"""MIDI in: ports opened by name, reopened after an unplug, messages routed to the mapping table.

Two halves, so the frame loop never waits on a device:

* `MidiPorts` owns the ports on its own thread. Every `rescan_s` it lists the backend's input
  names, opens those matching the patterns (each with a callback that only puts the message on
  the inputs' queue) and closes those that vanished. A controller unplugged and plugged back in
  is therefore reopened by name within one rescan, with no restart. No backend (no ALSA, no
  CoreMIDI) or no matching port: one log line, and the piece runs on.
* `MidiRouter` turns a mido message into (target, position) pairs on the loop's thread: 7-bit
  CCs, 14-bit CC pairs (MSB then LSB, the MSB resetting the LSB as the MIDI spec says), pitch
  bend, notes, and CC buttons (pressed when the value reaches 64). Anything else — sysex, clock,
  a malformed object — is ignored, never raised.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Callable, Mapping

from installation.settings import PARAMETER_LIMITS
from installation.inputs.spec import MidiSpec, parse_midi, port_matches

log = logging.getLogger("lapses.midi")

Route = tuple[str, "float | None"]    # (target, position 0..1) for a parameter, (target, None) for a press


def midi_targets(bindings: Mapping, scenes: Mapping) -> dict[str, MidiSpec]:
    """target -> parsed spec, for every row (and scene, as 'scene:NAME') that has one."""
    out: dict[str, MidiSpec] = {}
    for name, row in bindings.items():
        spec = parse_midi(row.midi)
        if spec is not None:
            out[name] = spec
    for name, scene in scenes.items():
        spec = parse_midi(scene.midi)
        if spec is not None:
            out[f"scene:{name}"] = spec
    return out


class MidiRouter:
    def __init__(self, specs: Mapping[str, MidiSpec], channel: int = 0):
        self.channel = channel                # 1..16, 0 = any
        self._slots: dict[tuple, tuple[str, MidiSpec]] = {}
        for target, spec in specs.items():
            for slot in spec.footprint():
                self._slots[slot] = (target, spec)
        self._msb: dict[tuple[int, int], int] = {}
        self._held: dict[tuple, bool] = {}

    def _find(self, ch: int, kind: str, number: int) -> tuple[tuple, tuple[str, MidiSpec]] | None:
        for key in ((ch, kind, number), (0, kind, number)):
            if key in self._slots:
                return key, self._slots[key]
        return None

    def off_channel(self, msg) -> int | None:
        """The channel (1..16) of a message that inputs.midi.channel keeps out, else None."""
        ch = getattr(msg, "channel", None)
        return ch + 1 if self.channel and isinstance(ch, int) and ch + 1 != self.channel else None

    def route(self, msg) -> list[Route]:
        try:
            return self._route(msg)
        except (AttributeError, TypeError, ValueError, KeyError):
            return []                          # not a MIDI message we understand: ignored

    def _route(self, msg) -> list[Route]:
        kind = msg.type
        if kind not in ("control_change", "pitchwheel", "note_on"):
            return []
        ch = int(msg.channel) + 1
        if self.off_channel(msg):
            return []
        if kind == "pitchwheel":
            found = self._find(ch, "pitchbend", 0)
            if found is None:
                return []
            pitch = int(msg.pitch)
            return [(found[1][0], min(1.0, max(0.0, (pitch + 8192) / 16383)))]
        if kind == "note_on":
            found = self._find(ch, "note", int(msg.note))
            return [(found[1][0], None)] if found is not None and int(msg.velocity) > 0 else []
        number, value = int(msg.control), int(msg.value)
        found = self._find(ch, "cc", number)
        if found is None or not 0 <= value <= 127:
            return []
        key, (target, spec) = found
        if spec.kind == "cc14":
            pair = (key[0], spec.number)
            if number == spec.number:          # MSB: coarse, and the LSB starts again from 0
                self._msb[pair] = value
                return [(target, (value << 7) / 16383)]
            return [(target, ((self._msb.get(pair, 0) << 7) | value) / 16383)]
        if target in PARAMETER_LIMITS:
            return [(target, value / 127)]
        down = value >= 64                     # a cc button (action or scene): pressed on the way up
        was = self._held.get(key, False)
        self._held[key] = down
        return [(target, None)] if down and not was else []


def learned_spec(msg, for_parameter: bool) -> MidiSpec | None:
    """The control a moved knob or pressed key is, for MIDI learn; None if it cannot serve the target
    (or is no MIDI message: learn must never save a control that the next start refuses)."""
    try:
        kind, ch = msg.type, int(msg.channel) + 1
        if not 1 <= ch <= 16:
            return None
        if kind == "control_change":
            if not for_parameter and int(msg.value) < 64:
                return None                    # a button's release: wait for its press
            number = int(msg.control)
            return MidiSpec("cc", number, ch) if 0 <= number <= 127 else None
        if kind == "pitchwheel" and for_parameter:
            return MidiSpec("pitchbend", 0, ch)
        if kind == "note_on" and not for_parameter and int(msg.velocity) > 0:
            number = int(msg.note)
            return MidiSpec("note", number, ch) if 0 <= number <= 127 else None
    except (AttributeError, TypeError, ValueError):
        pass
    return None


def rtmidi_backend():
    """mido's python-rtmidi backend, or an exception naming why there is none."""
    import mido
    backend = mido.Backend("mido.backends.rtmidi", load=True)
    with _quiet_stderr():                   # ALSA prints its own complaint; ours is the one log line
        backend.get_input_names()           # raises here when the MIDI system cannot be reached
    return backend


@contextlib.contextmanager
def _quiet_stderr():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class MidiPorts:
    """Input ports whose names match `patterns`, kept open on a thread; messages go to `post`."""

    def __init__(self, patterns: tuple[str, ...], post: Callable[[tuple], None], rescan_s: float = 1.0,
                 backend_factory: Callable[[], object] = rtmidi_backend):
        self.patterns = patterns
        self.post = post
        self.rescan_s = rescan_s
        self.backend_factory = backend_factory
        self.backend = None
        self.ports: dict[str, object] = {}
        self._names: tuple[str, ...] = ()      # what names() shows: the HUD reads it without waiting on a scan
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._said: set[str] = set()

    def _once(self, key: str, level: int, text: str, *args) -> None:
        if key not in self._said:
            self._said.add(key)
            log.log(level, text, *args)

    def start(self) -> bool:
        if not self.patterns:
            log.info("MIDI: inputs.midi.ports is empty; MIDI off")
            return False
        try:
            self.backend = self.backend_factory()
        except Exception as e:               # ImportError, rtmidi's SystemError, ...: all mean no MIDI
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            log.info("MIDI: no MIDI system (%s); the piece runs on without MIDI", first)
            return False
        self.scan()
        self._thread = threading.Thread(target=self._run, name="lapses-midi", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.rescan_s):
            self.scan()

    def _callback(self, name: str) -> Callable:
        def on_message(msg) -> None:           # on the backend's thread: hand over, nothing more
            try:
                self.post(("midi", msg, name))
            except Exception:
                pass
        return on_message

    def scan(self) -> None:
        """Open ports that appeared, close ports that vanished (an unplugged controller)."""
        try:
            names = list(self.backend.get_input_names())
        except Exception as e:
            self._once("list", logging.WARNING, "MIDI: cannot list ports (%s); trying again every %.1f s",
                       e, self.rescan_s)
            return
        with self._lock:
            for name in [n for n in self.ports if n not in names]:
                port = self.ports.pop(name)
                try:
                    port.close()
                except Exception:
                    pass
                log.warning("MIDI: %s is gone; it will be reopened when it comes back", name)
            for name in names:
                if name in self.ports or not port_matches(name, self.patterns):
                    continue
                try:
                    self.ports[name] = self.backend.open_input(name, callback=self._callback(name))
                except Exception as e:
                    self._once(f"open:{name}", logging.WARNING, "MIDI: cannot open %s (%s)", name, e)
                    continue
                self._said.discard(f"open:{name}")
                log.info("MIDI: listening to %s", name)
            self._names = tuple(sorted(self.ports))
            if not self.ports:
                self._once("none", logging.INFO, "MIDI: no input port matches %s (ports: %s); looking again "
                           "every %.1f s", ", ".join(self.patterns), ", ".join(names) or "none", self.rescan_s)
            else:
                self._said.discard("none")

    def names(self) -> list[str]:
        """The open ports, as of the last scan; never waits (the frame loop's HUD calls it while a
        scan may be opening a port)."""
        return list(self._names)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:
            for port in self.ports.values():
                try:
                    port.close()
                except Exception:
                    pass
            self.ports.clear()
            self._names = ()
