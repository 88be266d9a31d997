"""The live app: a pygame window (usually fullscreen) showing the piece, answering the keyboard.

The loop per frame: events (keys become one more input, in the queue MIDI, OSC and the camera
use) -> update (every waiting input acts, then real time passes in the piece) -> render the frame
state (weight damage recomputed on the engine's worker and swapped in between frames, so a key
never stalls the picture), hand it to the sound, save a screenshot if asked, blit, HUD, present
-> frame limiter.
Nothing here decides a picture; the engine does, from the piece's state. The sound plays on its
own threads (audio/live.py) and is only ever handed the newest state, so it cannot slow the loop.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import cv2
import numpy as np
import pygame

from .audio.features import cues_for
from .audio.live import LiveSound
from .engine import Engine
from .hud import FrameTimes, Hud
from .inputs.live import Inputs
from .piece import Piece
from .inputs.keys import split_combo

log = logging.getLogger("lapses.app")

WINDOW_DEFAULT = (1024, 768)
MAX_DT = 0.25   # a stall (a dragged window, a slow disk) must not make the walk jump
SHOT_GAP_S = 1.0               # one screenshot a second at most: a stuck key or an OSC flood must not fill the disk
SHOT_FLOOR_BYTES = 500 << 20   # and none while less is free where they go (the kiosk's state file lives there too)
# the window or the monitor under it changed: size, mode, or which display (an unplugged monitor)
DISPLAY_EVENTS = tuple(getattr(pygame, name) for name in ("VIDEORESIZE", "WINDOWSIZECHANGED", "WINDOWDISPLAYCHANGED")
                       if hasattr(pygame, name))


@dataclass
class QuitCombo:
    key: str
    ctrl: bool = False
    shift: bool = False
    alt: bool = False

    @classmethod
    def parse(cls, text: str) -> "QuitCombo":
        key, mods = split_combo(text)      # the settings have checked kiosk.quit_combo with it
        return cls(key, "ctrl" in mods, "shift" in mods, "alt" in mods)

    def matches(self, key: str, mod: int) -> bool:
        return (key == self.key and bool(mod & pygame.KMOD_CTRL) == self.ctrl
                and bool(mod & pygame.KMOD_SHIFT) == self.shift and bool(mod & pygame.KMOD_ALT) == self.alt)


@dataclass
class RunOptions:
    windowed: bool = False
    seconds: float | None = None           # quit after this many seconds of running
    kiosk: bool = False
    screenshot_dir: Path = Path(".")
    script: dict[int, list[str]] = field(default_factory=dict)   # frame index -> key names to press (tests)
    kiosk_run: object | None = None        # kiosk/runtime.KioskRun: told of every frame that reached the screen


@dataclass
class RunReport:
    frames: int
    seconds: float
    fps: float
    p99_ms: float
    screenshots: list[Path]
    progress: float


SHOWS_NOTHING = ("offscreen", "dummy")    # SDL video drivers that draw into memory, on no screen


class NoDisplay(Exception):
    """SDL found no screen and fell back, unasked, to a driver that shows nothing (a kiosk stops)."""


def unseen_display(driver: str, environ) -> str | None:
    """Why the piece would show nothing on this SDL video driver, or None: it shows, or nothing was
    asked of it (SDL_VIDEODRIVER=dummy, as the tests and benchmarks set it, is a choice, not a fault)."""
    if driver not in SHOWS_NOTHING or environ.get("SDL_VIDEODRIVER"):
        return None
    given = [f"{name}={environ[name]}" for name in ("DISPLAY", "WAYLAND_DISPLAY") if environ.get(name)]
    why = (f"{' and '.join(given)} could not be opened" if given else
           "DISPLAY and WAYLAND_DISPLAY are not set (an SSH login, or a service started before the desktop)")
    return (f"no display: {why}, so SDL fell back to its '{driver}' video driver, which shows nothing. Start the "
            f"piece in the desktop session (or give it the session's DISPLAY, e.g. DISPLAY=:0), or set "
            f"SDL_VIDEODRIVER={driver} to run without a screen on purpose")


def window_default(desktop: tuple[int, int]) -> tuple[int, int]:
    """The window's size when the settings leave it open: WINDOW_DEFAULT, shrunk (same aspect) to
    at most 90% of the monitor, so the whole window, title bar and HUD fit on a small screen."""
    dw, dh = desktop
    scale = min(1.0, 0.9 * dw / WINDOW_DEFAULT[0], 0.9 * dh / WINDOW_DEFAULT[1])
    return max(64, int(WINDOW_DEFAULT[0] * scale) // 2 * 2), max(48, int(WINDOW_DEFAULT[1] * scale) // 2 * 2)


def open_screen(display, windowed: bool) -> pygame.Surface:
    sizes = pygame.display.get_desktop_sizes() or [WINDOW_DEFAULT]
    monitor = display.monitor
    if monitor >= len(sizes):
        log.warning("display.monitor %d: only %d monitor(s) found; using monitor 0", monitor, len(sizes))
        monitor = 0
    native = sizes[monitor] if min(sizes[monitor]) > 0 else WINDOW_DEFAULT
    fullscreen = display.fullscreen and not windowed
    if fullscreen:
        size = (display.width or native[0], display.height or native[1])
        flags = pygame.FULLSCREEN
    else:
        size = (display.width or window_default(native)[0], display.height or window_default(native)[1])
        flags = 0
    if display.vsync:
        try:   # pygame's vsync needs SCALED (or OpenGL); some drivers refuse it
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # "no fast renderer available" on software drivers
                return pygame.display.set_mode(size, flags | pygame.SCALED, display=monitor, vsync=1)
        except pygame.error as e:
            log.info("vsync unavailable (%s); using the frame limiter only", e)
    return pygame.display.set_mode(size, flags, display=monitor)


class App:
    def __init__(self, settings, engine_factory=None):
        self.settings = settings
        self.engine_factory = engine_factory or (lambda w, h: Engine.from_settings(settings, w, h))
        self.action_of = settings.keys.action_of()
        self.quit_combo = QuitCombo.parse(settings.kiosk.quit_combo)
        self.running = False
        self.sound: LiveSound | None = None
        self.inputs: Inputs | None = None
        self._kiosk = False

    def _stop(self, *_):
        self.running = False

    def screenshot(self, engine: Engine, piece: Piece, folder: Path) -> Path:
        """The exact frame of the current state (damage applied in full, as a render would) as a
        PNG named with its state, and the state itself beside it (`render --replay` takes it)."""
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        if free < SHOT_FLOOR_BYTES:
            raise OSError(f"only {free >> 20} MB free in {folder}; screenshots stop below {SHOT_FLOOR_BYTES >> 20} MB")
        s = piece.frame_state()
        frame = engine.render(s, sync=True)
        name = (f"lapses_{time.strftime('%Y%m%d-%H%M%S')}_p{s.progress:.3f}_t{s.t:.2f}_phase{s.walk_phase:.2f}"
                f"_seed{s.seed}_decay{piece.course_state.overrides.decay:+.2f}.png")
        path = folder / name
        if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
        path.with_suffix(".json").write_text(json.dumps({"frame": 0, **s.to_dict()}) + "\n")
        return path

    def run(self, opts: RunOptions, piece: Piece | None = None) -> RunReport:
        kiosk = opts.kiosk or self.settings.kiosk.enabled
        # a bad mappings file, or (outside kiosk mode) an OSC port that cannot be had, stops here,
        # before any window; a kiosk logs a busy port and retries, so systemd need not restart it
        self.inputs = Inputs(self.settings, strict=not kiosk)
        self._kiosk = kiosk
        old_term = None
        try:
            self._display_init()
            pygame.font.init()
            old_term = signal.signal(signal.SIGTERM, self._stop) if _main_thread() else None
            screen = open_screen(self.settings.display, opts.windowed)
            pygame.display.set_caption("Lapses")
            pygame.mouse.set_visible(False)
            W, H = screen.get_size()
            engine = self.engine_factory(W, H)
            if piece is None:
                piece = Piece(self.settings, meta=engine.model.meta)
            else:                       # made before the model was loaded: the course of the model shown
                piece.follow_model(engine.model.meta)
            engine.damage.warm(piece.frame_state().seed)   # a performer's first touch then costs one recompute
            if self.settings.sound.enabled:
                self.sound = LiveSound(self.settings.sound, n_memories=len(engine.anchors))
                self.sound.start()      # no PortAudio or no device: one log line, and silence
            self.inputs.start()         # MIDI, OSC, camera on their own threads; missing ones: one log line
            return self._loop(screen, engine, piece, opts, kiosk)
        finally:
            if self.sound is not None:
                self.sound.close()
                self.sound = None
            self.inputs.close()
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
            pygame.display.quit()

    def _display_init(self) -> None:
        """pygame.display.init(); a driver that shows nothing, not asked for, is said plainly, and
        stops a kiosk (NoDisplay): a gallery screen must not stay black while the piece reports frames."""
        try:
            pygame.display.init()
        except pygame.error as e:            # SDL_VIDEODRIVER=x11 with no X server, say
            asked = os.environ.get("SDL_VIDEODRIVER")
            raise NoDisplay(f"no display: SDL cannot open one ({e}" + (f", SDL_VIDEODRIVER={asked}" if asked else "")
                            + "); start the piece in the desktop session, or give it the session's DISPLAY "
                              "(e.g. DISPLAY=:0)") from None
        problem = unseen_display(pygame.display.get_driver(), os.environ)
        if problem and self._kiosk:
            raise NoDisplay(problem)
        if problem:
            log.warning("%s", problem)

    def _follow_display(self, engine: Engine, opts: RunOptions, reopen: bool = False):
        """The screen as it is now (reopened if it was lost); the engine renders at its size from now on.
        A display that cannot be opened again raises pygame.error: the run ends non-zero and a
        supervisor starts it afresh."""
        screen = None if reopen else pygame.display.get_surface()
        if screen is None:
            pygame.display.quit()
            self._display_init()
            screen = open_screen(self.settings.display, opts.windowed)
            pygame.display.set_caption("Lapses")
            pygame.mouse.set_visible(False)
        W, H = screen.get_size()
        spec = getattr(getattr(engine, "output", None), "spec", None)
        if reopen or spec is None or (spec.width, spec.height) != (W, H):   # not for the window's own first events
            log.info("display now %dx%d", W, H)
        engine.resize(W, H)
        return screen, W, H, Hud(H)

    def _loop(self, screen, engine: Engine, piece: Piece, opts: RunOptions, kiosk: bool) -> RunReport:
        """Frame after frame: events -> update -> render, until quit, SIGTERM or opts.seconds."""
        show = _Show(screen, *screen.get_size(), Hud(screen.get_size()[1]), self.settings.display.hud,
                     engine.model.path.name)
        clock = pygame.time.Clock()
        log.info("showing %s at %dx%d on %s, SDL video driver %s%s", engine.model.path, *screen.get_size(),
                 engine.device_name, pygame.display.get_driver(), " (kiosk mode)" if kiosk else "")
        self.running = True
        start = show.last = time.perf_counter()
        try:
            while self.running:
                if self._events(opts.script.get(show.frames, ()), kiosk) or show.screen.get_size() != show.size:
                    show.follow(*self._follow_display(engine, opts))
                now = time.perf_counter()
                state, urgent, event = self._update(piece, show, now)
                self._render(engine, piece, state, urgent, event, show, opts, now)
                if opts.seconds is not None and now - start >= opts.seconds:
                    break
                clock.tick(self.settings.display.fps_limit)
        finally:
            engine.close()
        elapsed = time.perf_counter() - start
        report = RunReport(show.frames, elapsed, show.frames / elapsed if elapsed > 0 else 0.0, show.times.p99_ms(),
                           show.shots, piece.sample().point.progress)
        log.info("%d frames in %.1f s: %.1f fps, p99 %.1f ms", show.frames, elapsed, report.fps, report.p99_ms)
        if self.sound is not None and self.sound.state == "playing":
            log.info("sound: %d underruns", self.sound.underruns)
        return report

    def _events(self, scripted_keys, kiosk: bool) -> bool:
        """The window's events: quit, the display changing, and keys, which become one more input
        (posted to the queue MIDI and OSC use, so all of them act in one place). True where the
        display changed."""
        for key in scripted_keys:
            pygame.event.post(key_event(key))
        display_changed = False
        for event in pygame.event.get():
            if event.type == pygame.QUIT and not kiosk:
                self.running = False
            elif event.type in DISPLAY_EVENTS:
                display_changed = True
            elif event.type == pygame.KEYDOWN:
                name = pygame.key.name(event.key).lower()
                if self.quit_combo.matches(name, event.mod):
                    self.running = False
                elif not kiosk:                   # a gallery: stray keys do nothing
                    action = self.action_of.get(name) or self.inputs.key_action(name)
                    if action == "quit":
                        self.running = False
                    elif action is not None:
                        self.inputs.post(("action", action))
        return display_changed

    def _update(self, piece: Piece, show: "_Show", now: float):
        """Every input waiting (keys, MIDI, OSC, camera) acts, then real time passes in the piece.
        Returns the frame's state, whether a performer changed the course in it (such a change
        shows on this very frame where the damage is cheap to recompute; the course's own creep,
        piece.step, goes through the worker) and whether an input event this very frame did it, not
        the glide of one before (Damage.request: a tap)."""
        before = piece.course_state
        for app_action, message in self.inputs.drain(piece, now):       # before the step: seen this frame
            if app_action == "hud":
                show.hud_on = not show.hud_on
            elif app_action == "screenshot":
                show.want_shot = True
            if message:
                show.hud.say(message, now)
        urgent = piece.course_state != before
        event = urgent and self.inputs.events_drained > 0
        dt, show.last = now - show.last, now
        if show.frames:
            show.times.add(dt)
        piece.step(min(dt, MAX_DT))
        return piece.frame_state(), urgent, event

    def _render(self, engine: Engine, piece: Piece, state, urgent: bool, event: bool, show: "_Show",
                opts: RunOptions, now: float) -> None:
        """The frame drawn, heard, saved if asked, and presented."""
        if opts.kiosk_run is not None:
            opts.kiosk_run.begin_drawing()        # from here on a crash may be the course's
        frame = engine.render(state, sync=False, urgent=urgent, event=event)
        if self.sound is not None:
            self.sound.feed(state, cues_for(engine, state, frame))
        if show.want_shot:
            show.want_shot = False
            self._shoot(engine, piece, show, opts, now)
        try:
            show.screen.blit(pygame.image.frombuffer(frame.data, show.size, "RGB"), (0, 0))
            if show.hud_on:
                show.hud.draw(show.screen, piece, show.times, engine.device_name, show.model_name, now,
                              sound=self.sound.hud_line() if self.sound is not None else None,
                              inputs=self.inputs.hud_line())
            pygame.display.flip()
        except pygame.error as e:     # the display went away (a monitor unplugged, the mode changed)
            log.error("display lost (%s); opening it again", e)
            show.follow(*self._follow_display(engine, opts, reopen=True))
        else:
            show.frames += 1
            if opts.kiosk_run is not None:
                opts.kiosk_run.presented(piece)   # only now: systemd's watchdog hears of real frames

    def _shoot(self, engine: Engine, piece: Piece, show: "_Show", opts: RunOptions, now: float) -> None:
        if now - show.last_shot < SHOT_GAP_S:
            show.hud.say("one screenshot a second", now)
            return
        show.last_shot = now
        try:
            path = self.screenshot(engine, piece, opts.screenshot_dir)
            show.shots.append(path)
            show.hud.say(f"saved {path.name}", now)
            log.info("screenshot %s", path)
        except OSError as e:      # a full disk must not end the show
            show.hud.say(f"screenshot failed: {e}", now)
            log.error("screenshot failed: %s", e)


@dataclass
class _Show:
    """What the live loop carries from one frame to the next."""
    screen: pygame.Surface
    w: int                      # the size the engine renders at (the screen's, as last followed)
    h: int
    hud: Hud
    hud_on: bool
    model_name: str
    times: FrameTimes = field(default_factory=FrameTimes)
    shots: list = field(default_factory=list)
    last_shot: float = float("-inf")   # the first screenshot is always taken, however soon after boot
    frames: int = 0
    last: float = 0.0
    want_shot: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return self.w, self.h

    def follow(self, screen, w: int, h: int, hud: Hud) -> None:
        self.screen, self.w, self.h, self.hud = screen, w, h, hud


def key_event(spec: str) -> pygame.event.Event:
    """A KEYDOWN event for a key as settings.yaml names it, modifiers allowed: "r", "ctrl+shift+q"."""
    combo = QuitCombo.parse(spec)
    mod = ((pygame.KMOD_LCTRL if combo.ctrl else 0) | (pygame.KMOD_LSHIFT if combo.shift else 0)
           | (pygame.KMOD_LALT if combo.alt else 0))
    return pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(combo.key), mod=mod, unicode="", scancode=0)


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()
