"""The live piece's frame rate and control latency, beside a naive loop, in one run.

    .venv/bin/python benchmarks/live_speed.py [--size 1920x1080] [--seconds 30] [--model FILE]

Row "ours" is the real app loop (`python -m installation`), headless (SDL's dummy driver), no
frame limiter, vsync off, with the course swept from 0 to 1 in --seconds: walk, course, latent,
weight and activation damage (weights recomputed on the damage worker and swapped in between
frames), generator, upscaling, grain and vignette, blit, inputs (the OSC server listening).
Row "naive" is the same model and course written the obvious way: the generator called once per
frame, every weight symptom recomputed on the render thread whenever the intensities change
(its seeded masks and noise drawn afresh each time: no field cache),
torch bicubic upscaling, a surfarray blit. Prints median fps, p99 and worst frame time, frames
over 100 ms, and ours over naive.

Control latency: a second run of the app at a fixed stage of the illness (progress 0.7) gets
real UDP OSC packets (/revive, then /decay 0) and key presses (decay up, revive), and counts the
frames from each event to the first frame whose weights show it (pristine after a revive,
damaged again after decay, changed after decay up), leaving out the frames whose own state did
not yet ask for it (a glide, the story's healthy start: see latency()). 1 = the very next frame.
"""
from __future__ import annotations

import argparse
import statistics
import time

from common import BUNDLED, FrameStats, Figure, headless, machine, print_figures, run_main

headless()

import pygame  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from installation.app import App, RunOptions, key_event  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.piece import Piece  # noqa: E402
from installation.settings import load_settings  # noqa: E402
from installation.symptoms.base import FIELDS  # noqa: E402


def live_settings(model, w: int, h: int, course: str, extra=()):
    return load_settings(overrides=[f"model.path={model}", "display.fullscreen=false", f"display.width={w}",
                                    f"display.height={h}", "display.vsync=false", "display.fps_limit=0",
                                    f"course.duration={course}", "course.lucid.enabled=false",
                                    "inputs.osc.port=0", "sound.enabled=false", *extra])


class Recorder:
    """Wraps the engine's render: the time of every frame, and a hook run after each."""

    def __init__(self, engine: Engine, after=None):
        self.engine, self.after = engine, after
        self.times: list[float] = []
        self._render = engine.render
        engine.render = self.render

    def render(self, state, sync: bool = True, **kw):
        frame = self._render(state, sync=sync, **kw)
        self.times.append(time.perf_counter())
        if self.after is not None:
            self.after(self, state)
        return frame

    def periods(self, skip: int = 10) -> list[float]:
        t = self.times[skip:]
        return [b - a for a, b in zip(t, t[1:])]


def ours(settings, seconds: float) -> FrameStats:
    rec: dict[str, Recorder] = {}

    def factory(w, h):
        engine = Engine.from_settings(settings, w, h)
        rec["r"] = Recorder(engine)
        return engine
    App(settings, engine_factory=factory).run(RunOptions(windowed=True, seconds=seconds))
    return FrameStats(rec["r"].periods())


def naive(settings, seconds: float) -> FrameStats:
    """The obvious loop: per frame, damage recomputed synchronously, generate, upscale, blit."""
    pygame.display.init()
    try:
        w, h = settings.display.width, settings.display.height
        screen = pygame.display.set_mode((w, h))
        engine = Engine.from_settings(settings, 64, 64)
        piece = Piece(settings)
        side = min(w, h)
        times = []
        start = last = time.perf_counter()
        with FIELDS.disabled():    # the obvious loop draws its masks afresh
            while last - start < seconds:
                pygame.event.pump()
                now = time.perf_counter()
                piece.step(min(now - last, 0.25))
                last = now
                state = piece.frame_state()
                with torch.inference_mode():
                    img = engine.generate(engine.latent(state), state, sync=True)       # [1, C, S, S]
                    big = F.interpolate(img, size=(side, side), mode="bicubic", align_corners=False)
                    frame = ((big[0].clamp(-1, 1) + 1) * 127.5).to(torch.uint8).expand(3, -1, -1)
                    frame = frame.permute(2, 1, 0).contiguous().numpy()               # [W, H, 3] for surfarray
                screen.fill((0, 0, 0))
                screen.blit(pygame.surfarray.make_surface(frame), ((w - side) // 2, (h - side) // 2))
                pygame.display.flip()
                times.append(time.perf_counter())
        engine.close()
    finally:
        pygame.display.quit()
    t = times[10:]
    return FrameStats([b - a for a, b in zip(t, t[1:])])


def latency(settings, events_each: int = 6) -> dict[str, list[int]]:
    """Frames from an event to the first frame showing it, per kind of event.

    The engine's latency, not the gesture's: an OSC /decay glides (its binding's smoothing_s), and
    decay moves along the course's story, so the first frames after `/decay 0` from a revived
    piece still ask for healthy weights (the story's first stretch has no weight damage). So the
    count leaves out the frames whose own state did not yet ask for what is awaited, and 1 still
    means the very next frame. Awaited: pristine weights after a revive, damaged ones after
    `/decay 0`, other weights than before after a key's decay_up (from the course at 0.7). Events
    are half a second apart, so each one meets a settled piece (a tap on top of a knob still
    gliding is the knob row's case)."""
    keys = {action: key for key, action in settings.keys.action_of().items()}
    plan = []
    for _ in range(events_each):
        plan += [("osc revive", "pristine", ("/revive",)), ("osc decay", "damaged", ("/decay", 0.0)),
                 ("key decay_up", "changed", keys["decay_up"]), ("key revive", "pristine", keys["revive"])]
    result: dict[str, list[int]] = {}
    client: dict[str, SimpleUDPClient] = {}
    app_box: dict[str, App] = {}
    st = {"i": 0, "sent_at": None, "frames": 0, "asked": None, "before": None, "wait": 30}

    def shows(want: str, key: tuple) -> bool:
        return key == () if want == "pristine" else key != () if want == "damaged" else key != st["before"]

    def after(rec: Recorder, state) -> None:
        if st["i"] >= len(plan):
            app_box["app"].running = False
            return
        if st["sent_at"] is None:
            st["wait"] -= 1
            if st["wait"] > 0:
                return
            kind, want, what = plan[st["i"]]
            if kind.startswith("osc"):
                if "c" not in client:
                    client["c"] = SimpleUDPClient("127.0.0.1", app_box["app"].inputs.osc_port)
                client["c"].send_message(what[0], list(what[1:]))
            else:
                pygame.event.post(key_event(what))
            st.update(sent_at=time.perf_counter(), frames=0, asked=None, before=rec.engine.damage.live()[0])
            return
        st["frames"] += 1
        kind, want, _ = plan[st["i"]]
        if st["asked"] is None and shows(want, rec.engine.weights.key(state.intensities, state.seed)):
            st["asked"] = st["frames"] - 1          # frames whose own state did not yet ask for it
        if (st["asked"] is not None and shows(want, rec.engine.damage.live()[0])) or st["frames"] > 120:
            result.setdefault(kind, []).append(st["frames"] - (st["asked"] or 0))
            st.update(i=st["i"] + 1, sent_at=None, wait=30)   # half a second: the last glide has settled

    def factory(w, h):
        engine = Engine.from_settings(settings, w, h)
        Recorder(engine, after)
        return engine
    app = app_box["app"] = App(settings, engine_factory=factory)
    course = Piece(settings).course
    piece = Piece(settings, course.at_progress(course.initial_state(), 0.7))
    app.run(RunOptions(windowed=True, seconds=120), piece=piece)
    return result


def knob(settings, seconds: float = 6.0, rate_hz: float = 50.0) -> FrameStats:
    """Frame periods while a performer turns a knob: OSC /decay swept up and down, `rate_hz`
    messages a second (a MIDI knob's pace), from a course at 0.7. Each message changes the weights."""
    app_box: dict[str, App] = {}
    client: dict[str, SimpleUDPClient] = {}
    st = {"start": None, "sent": 0.0}

    def after(rec: Recorder, state) -> None:
        now = time.perf_counter()
        if st["start"] is None:
            if len(rec.times) < 30:             # warm up first
                return
            st["start"] = now
            rec.times.clear()
        if now - st["start"] > seconds:
            app_box["app"].running = False
            return
        if now - st["sent"] >= 1 / rate_hz:
            if "c" not in client:
                client["c"] = SimpleUDPClient("127.0.0.1", app_box["app"].inputs.osc_port)
            phase = (now - st["start"]) / 2.0 % 2.0                       # up in 2 s, down in 2 s
            client["c"].send_message("/decay", [round(-0.6 + 0.6 * (phase if phase < 1 else 2 - phase), 3)])
            st["sent"] = now
    rec: dict[str, Recorder] = {}

    def factory(w, h):
        engine = Engine.from_settings(settings, w, h)
        rec["r"] = Recorder(engine, after)
        return engine
    app = app_box["app"] = App(settings, engine_factory=factory)
    course = Piece(settings).course
    piece = Piece(settings, course.at_progress(course.initial_state(), 0.7))
    app.run(RunOptions(windowed=True, seconds=seconds + 60), piece=piece)
    return FrameStats(rec["r"].periods(skip=0))


def gpu_throughput(model, w: int, h: int, frames: int = 600) -> float | None:
    """Engine frames/s on CUDA, uncapped, course sweeping: generation, damage, upscale, one copy out."""
    if not torch.cuda.is_available():
        return None
    settings = load_settings(overrides=[f"model.path={model}", "model.device=cuda", "course.duration=20s",
                                        "course.lucid.enabled=false"])
    engine = Engine.from_settings(settings, w, h)
    piece = Piece(settings)
    for _ in range(30):
        engine.render(piece.frame_state(), sync=False)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(frames):
        piece.step(1 / 30)
        engine.render(piece.frame_state(), sync=False)
    torch.cuda.synchronize()
    fps = frames / (time.perf_counter() - t0)
    engine.close()
    return fps


def measure(model=BUNDLED, size=(1920, 1080), seconds: float = 30.0) -> list[Figure]:
    w, h = size
    sweep = live_settings(model, w, h, f"{seconds:g}s")
    a = ours(sweep, seconds)
    b = naive(sweep, seconds)
    lat = latency(live_settings(model, w, h, "8h"))
    turning = knob(live_settings(model, w, h, "8h"))
    worst = max(max(v) for v in lat.values())
    gpu = gpu_throughput(model, w, h)
    figs = [
        Figure(f"live CPU {w}x{h}: median fps", f"{a.fps_median:.1f}", ">= 30", a.fps_median >= 30),
        Figure("live CPU: p99 frame time", f"{a.p99_ms:.1f} ms", "<= 50 ms", a.p99_ms <= 50),
        Figure("live CPU: frames over 100 ms", f"{a.over_ms(100)} (worst {a.max_ms:.0f} ms)", "0", a.over_ms(100) == 0),
        Figure("naive loop: median fps", f"{b.fps_median:.1f} (p99 {b.p99_ms:.0f} ms)", "", None),
        Figure("live CPU: ours / naive", f"{a.fps_median / b.fps_median:.2f}x", ">= 2x", a.fps_median / b.fps_median >= 2),
    ]
    for kind, frames in lat.items():
        figs.append(Figure(f"control latency, {kind}", f"median {statistics.median(frames):g}, max {max(frames)} frames",
                           "<= 2 frames", max(frames) <= 2))
    figs.append(Figure("control latency, worst of all", f"{worst} frames", "<= 2 frames", worst <= 2))
    figs.append(Figure("live CPU while a knob turns (50 msgs/s)", f"median {turning.fps_median:.1f} fps, p99 "
                       f"{turning.p99_ms:.1f} ms, worst {turning.max_ms:.0f} ms", "p99 <= 50 ms, none > 100 ms",
                       turning.p99_ms <= 50 and turning.over_ms(100) == 0))
    figs.append(Figure(f"live GPU {w}x{h}: engine fps uncapped", "no GPU here" if gpu is None else f"{gpu:.0f}",
                       ">= 240", None if gpu is None else gpu >= 240))
    return figs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--model", default=str(BUNDLED))
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    figs = measure(args.model, size, args.seconds)
    print_figures(f"live speed on {machine()}", figs)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
