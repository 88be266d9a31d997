"""`Inputs`: the one place MIDI, OSC, presence and the extra keys reach the piece.

Devices live on their own threads (midi.py, osc.py, presence.py) and only put plain events on a
thread-safe queue. The live loop calls `drain(piece, now)` once per frame, before the piece steps
and the frame renders, so an event received before a frame starts shows in that frame; every
event ends in the same hands as the keyboard (`Piece.act` and the parameter setters, via
mapping.py). Nothing an input sends can raise into the loop: a bad event is logged once and
dropped. Actions that belong to the app (hud, screenshot) are handed back to it.

An OSC port that another program holds is, by default, one log line (the server keeps trying):
a gallery must not go dark for it. With `strict=True` (a performer at the console) the port is
taken when Inputs is made, before any window, and one that cannot be had is a SettingsError
naming inputs.osc.port or inputs.osc.host: the piece stops with exit code 2 and says why.
"""
from __future__ import annotations

import logging
import math
import queue
import socket
from typing import Callable

from installation.piece import ACTIONS
from installation.settings import PARAMETER_LIMITS, SYMPTOM_NAMES, SettingsError
from installation.inputs import learn as learning
from installation.inputs.mapping import Mapper
from installation.inputs.midi import MidiPorts, MidiRouter, learned_spec, midi_targets, rtmidi_backend
from installation.inputs.osc import OscSender, OscServer
from installation.inputs.spec import MidiSpec, parse_host_port, port_patterns

log = logging.getLogger("lapses.inputs")

APP_ACTIONS = ("hud", "screenshot")
MAX_EVENTS_PER_FRAME = 4096      # a flooding device cannot hold a frame for long
MAX_SAID = 256                   # problems remembered as "said once": a sender of ever new addresses cannot grow it
PAIR_S = 0.5                     # MIDI learn: an LSB (cc N+32) this soon after a learned cc N makes it a cc14 pair


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_cc(msg, number: int, channel: int | None) -> bool:
    """Whether a MIDI message is control change `number` on `channel` (1..16); never raises."""
    try:
        return msg.type == "control_change" and int(msg.control) == number and int(msg.channel) + 1 == channel
    except (AttributeError, TypeError, ValueError):
        return False


class Inputs:
    def __init__(self, settings, midi_backend: Callable[[], object] | None = None,
                 capture_factory: Callable | None = None, strict: bool = False):
        cfg = settings.inputs
        self.settings = settings
        self.cfg = cfg
        self.mappings_path = settings.beside_settings(cfg.mappings_file)
        self.learned = learning.load_mappings(self.mappings_path, cfg.map, cfg.scenes)   # SettingsError if bad
        self.bindings, self.scenes = learning.apply_mappings(cfg.map, cfg.scenes, self.learned)
        self.bindings, self.scenes, freed = learning.free_overlaps(self.bindings, self.scenes, self.learned)
        for row, text, learned_by in freed:        # settings.yaml was edited since the controller was learned
            log.warning("inputs: %s's MIDI %s (settings.yaml) is ignored: %s binds it to %s (MIDI learn)",
                        row, text, self.mappings_path.name, learned_by)
        self.router = MidiRouter(midi_targets(self.bindings, self.scenes), cfg.midi.channel)
        self.mapper = Mapper(self.bindings, self.scenes)
        self.learn = learning.Learn(learning.targets(self.bindings, self.scenes))
        self.osc_targets = {row.osc: name for name, row in self.bindings.items() if row.osc}
        self.presence_targets: dict[str, list[str]] = {}
        for name, row in self.bindings.items():
            if row.presence:
                self.presence_targets.setdefault(row.presence, []).append(name)
        self.scene_keys = {s.key.strip().lower(): f"scene:{name}" for name, s in self.scenes.items() if s.key.strip()}
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.events_drained = 0          # input events the last drain acted on (0: glides and fades only)
        self._midi_backend = midi_backend or rtmidi_backend
        self._capture_factory = capture_factory
        self.midi: MidiPorts | None = None
        self.osc: OscServer | None = None
        self.sender: OscSender | None = None
        self.camera = None
        self._said: set = set()
        self._pair: tuple | None = None      # (target, channel, cc number, until): a learned cc that may be a pair
        if strict and cfg.osc.enabled:
            self._take_osc_port()

    def _take_osc_port(self) -> None:
        """Bind the OSC port now; a SettingsError naming the key when it cannot be had."""
        cfg = self.cfg.osc
        self.osc = OscServer(cfg.host, cfg.port, self.post)
        if self.osc.bind():
            return
        e, self.osc = self.osc.error, None
        if isinstance(e, socket.gaierror):
            raise SettingsError(f"inputs.osc.host: cannot listen on {cfg.host!r} ({e}); allowed: an address of "
                                f"this machine, such as 127.0.0.1 or 0.0.0.0") from None
        raise SettingsError(f"inputs.osc.port: cannot listen on {cfg.host}:{cfg.port} ({e.strerror or e}; another "
                            f"program, perhaps another Lapses, may have it); allowed: a free port, 0 for any free "
                            f"port (shown in the log), or inputs.osc.enabled: false") from None

    # -- devices -----------------------------------------------------------------------------------

    def start(self) -> "Inputs":
        """Open what settings ask for; each device that is missing says so once and is skipped."""
        cfg = self.cfg
        if cfg.midi.enabled:
            self.midi = MidiPorts(port_patterns(cfg.midi.ports), self.post, cfg.midi.rescan_s, self._midi_backend)
            if not self.midi.start():
                self.midi = None
        if cfg.osc.enabled:
            if self.osc is None:
                self.osc = OscServer(cfg.osc.host, cfg.osc.port, self.post)
            self.osc.start()            # a port that is taken: one log line, and it keeps trying
            target = parse_host_port(cfg.osc.send_to)
            if target is not None:
                self.sender = OscSender(target[0], target[1], cfg.osc.send_rate_hz)
                self.sender.start()
        if cfg.presence.enabled:
            from installation.inputs.presence import PresenceCamera
            self.camera = PresenceCamera(cfg.presence, self.post, self._capture_factory)
            self.camera.start()
        return self

    def close(self) -> None:
        for device in (self.midi, self.osc, self.sender, self.camera):
            if device is not None:
                try:
                    device.close()
                except Exception as e:      # closing must never stop the app from closing
                    log.warning("inputs: closing %s failed (%s)", type(device).__name__, e)
        self.midi = self.osc = self.sender = self.camera = None

    @property
    def osc_port(self) -> int | None:
        return self.osc.port if self.osc is not None else None

    # -- events --------------------------------------------------------------------------------------

    def post(self, event: tuple) -> None:
        """Thread-safe: what every device (and the keyboard, for the keys it does not handle) calls."""
        self.queue.put(event)

    def key_action(self, key_name: str) -> str | None:
        """A scene's key, for the keyboard loop (the actions' keys are in settings.keys)."""
        return self.scene_keys.get(key_name)

    def drain(self, piece, now: float) -> list[tuple[str | None, str | None]]:
        """Apply every waiting event, then advance glides and fades to `now` (call once per frame,
        before the piece steps). Returns (app action or None, HUD message or None) pairs."""
        out: list[tuple[str | None, str | None]] = []
        self.events_drained = 0
        for _ in range(MAX_EVENTS_PER_FRAME):
            try:
                event = self.queue.get_nowait()
            except queue.Empty:
                break
            self.events_drained += 1
            try:
                out.extend(self._handle(piece, event, now))
            except Exception as e:                    # the frame loop must never die from an input
                self._once(("crash", type(e).__name__), logging.ERROR, "inputs: ignored %s (%s: %s)",
                           repr(event)[:80], type(e).__name__, e)
        try:
            self.mapper.update(piece, now)
        except Exception as e:
            self._once(("update", type(e).__name__), logging.ERROR, "inputs: %s: %s", type(e).__name__, e)
        if self.sender is not None:
            try:
                self.sender.offer(state_messages(piece))
            except Exception as e:                    # nor from telling the rigs what it is doing
                self._once(("state", type(e).__name__), logging.ERROR, "inputs: state not sent (%s: %s)",
                           type(e).__name__, e)
        return out

    def _once(self, key, level: int, text: str, *args) -> None:
        if key in self._said:
            return
        if len(self._said) >= MAX_SAID:
            if "full" not in self._said:
                self._said.add("full")
                log.warning("inputs: %d different input problems; further ones are not logged", MAX_SAID)
            return
        self._said.add(key)
        log.log(level, text + " (said once)", *args)

    def _handle(self, piece, event: tuple, now: float) -> list:
        kind = event[0]
        if kind == "action":
            return [self.act(piece, event[1], now)]
        if kind == "midi":
            return self._midi(piece, event[1], now)
        if kind == "osc":
            return self._osc(piece, event[1], event[2], now)
        if kind == "presence":
            return [self.act(piece, target, now) for target in self.presence_targets.get(event[1], [])]
        return []

    def act(self, piece, name: str, now: float) -> tuple[str | None, str | None]:
        """Do one action of the table (a piece action, a scene, learn, or an app action)."""
        if name.startswith("scene:"):
            message = self.mapper.recall(piece, name[len("scene:"):], now)
            log.info("%s", message)
            return None, message
        if name in APP_ACTIONS:
            return name, None
        if name == "learn":
            return None, self.learn.toggle()
        if name in ("select_prev", "select_next"):
            return None, self.learn.select(-1 if name == "select_prev" else 1)
        if name in ACTIONS:
            message = piece.act(name)
            log.info("%s: %s", name, message)
            return None, message
        return None, None

    def _midi(self, piece, msg, now: float) -> list:
        if self.learn.armed:
            target = self.learn.selected
            off = self.router.off_channel(msg)
            if off:
                return [(None, f"learn: that came on channel {off}, but inputs.midi.channel is "
                               f"{self.router.channel} and only it is heard; not learned")]
            spec = learned_spec(msg, for_parameter=target in PARAMETER_LIMITS)
            if spec is None:
                return []
            said = self.bind(target, spec)
            if spec.kind == "cc" and spec.number < 32 and target in PARAMETER_LIMITS:
                self._pair = (target, spec.channel, spec.number, now + PAIR_S)   # a 14-bit knob sends cc N+32 next
            return [(None, said)]
        if self._pair is not None:
            target, channel, number, until = self._pair
            if now > until:
                self._pair = None
            elif _is_cc(msg, number + 32, channel):
                self._pair = None       # the LSB of a 14-bit pair: learn the pair, not its coarse half
                return [(None, self.bind(target, MidiSpec("cc14", number, channel)))]
        out = []
        for target, x in self.router.route(msg):
            if x is None:
                out.append(self.act(piece, target, now))
            else:
                message = self.mapper.control(piece, target, x, f"midi:{target}", now)
                if message:
                    out.append((None, message))
        return out

    def bind(self, target: str, spec) -> str:
        """MIDI learn's end: bind, save the mappings file, and listen with the new table."""
        self.learn.armed = False
        self._pair = None
        self.learned = learning.bind(self.bindings, self.scenes, self.learned, target, spec)
        self.bindings, self.scenes = learning.apply_mappings(self.cfg.map, self.cfg.scenes, self.learned)
        self.bindings, self.scenes, _ = learning.free_overlaps(self.bindings, self.scenes, self.learned)
        self.router = MidiRouter(midi_targets(self.bindings, self.scenes), self.cfg.midi.channel)
        try:
            learning.save_mappings(self.mappings_path, self.learned)
        except OSError as e:
            log.error("MIDI learn: cannot save %s (%s); the binding lasts until the piece stops", self.mappings_path, e)
            return f"learned {target} = {spec.text()} (NOT saved: {e})"
        log.info("MIDI learn: %s = %s, saved in %s", target, spec.text(), self.mappings_path)
        return f"learned {target} = {spec.text()}"

    def _osc(self, piece, address, args, now: float) -> list:
        if not isinstance(address, str) or not isinstance(args, tuple):
            return []
        if address == "/scene":
            if len(args) == 1 and isinstance(args[0], str) and args[0] in self.scenes:
                return [self.act(piece, f"scene:{args[0]}", now)]
            self._once((address, "args"), logging.WARNING, "OSC: /scene wants one scene name (%s); got %r",
                       ", ".join(self.scenes), args)
            return []
        target = self.osc_targets.get(address)
        if target is None:
            self._once((address, "unknown"), logging.WARNING, "OSC: unknown address %.100s ignored", address)
            return []
        if target in PARAMETER_LIMITS:
            if len(args) != 1 or not _number(args[0]):
                self._once((address, "args"), logging.WARNING, "OSC: %s wants one number; got %r", address, args)
                return []
            self.mapper.set_value(piece, target, float(args[0]), f"osc:{address}", now)
            return []
        if args and ((_number(args[0]) and args[0] == 0) or args[0] is False):
            return []                           # a button's release (TouchOSC sends 1 then 0)
        return [self.act(piece, target, now)]

    # -- the HUD ------------------------------------------------------------------------------------

    def hud_line(self) -> str:
        if self.midi is not None:
            midi = f"midi {len(self.midi.names())} port(s)"
        else:
            midi = "midi: none (no MIDI system)" if self.cfg.midi.enabled and self.cfg.midi.ports else "midi off"
        if self.osc is None:
            osc = "osc off"
        else:
            osc = f"osc :{self.osc.port}" if self.osc.port is not None else f"osc :{self.cfg.osc.port} busy, retrying"
        target = self.learn.selected
        row = self.bindings.get(target)
        bound = row.midi if row is not None else self.scenes[target[len('scene:'):]].midi
        learn = "   LEARN: move a control" if self.learn.armed else ""
        cam = "   camera" if self.camera is not None and self.camera.watching else ""
        return f"{midi}   {osc}{cam}   [{target}] {bound or 'no midi'}{learn}"


def state_messages(piece) -> list[tuple[str, tuple]]:
    """What the piece tells sound and lighting rigs: progress, stage, overrides and each symptom."""
    s = piece.sample()
    p = s.point
    out = [("/state/progress", (float(p.progress),)), ("/state/stage", (int(p.stage), p.stage_name)),
           ("/state/decay", (float(piece.course_state.overrides.decay),)), ("/state/speed", (float(piece.speed),)),
           ("/state/lucid", (float(s.lucid),)), ("/state/paused", (int(piece.paused),))]
    out += [(f"/state/symptom/{name}", (float(s.intensities.get(name, 0.0)),)) for name in SYMPTOM_NAMES]
    return out
