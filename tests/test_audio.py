"""Sound: deterministic, click-free, bounded, forgetting with the picture; live without a device; films with AAC.

CPU only, no audio device: the live tests replace sounddevice with a stand-in that records what
the piece asks of it and lets the test play PortAudio's part (calling the callback)."""
import logging
import time
import types

import av
import numpy as np
import pytest

from installation.audio import Cues, Soundscape
from installation.audio import live as live_module
from installation.audio.live import LiveSound
from installation.audio.track import (GROUP, PAD_SAMPLES, FilmSound, Meter, StageMeters, measure, read_wav,
                                      spectral_flatness)
from installation.course import Course
from installation.settings import SettingsError, settings_from_dict
from installation.state import FrameState
from installation.symptoms.lapses import darkness

SR = 16000          # tests synthesise at 16 kHz: the same code, a third of the work


def _settings(*overrides, rate=SR):
    return settings_from_dict({}, [f"sound.sample_rate={rate}", *overrides])


def _state(progress=0.0, t=0.0, seed=1, lapses=None, **intensities):
    s = dict(Course(_settings().course).curve_intensities(progress))
    if lapses is not None:
        s["lapses"] = lapses
    s.update(intensities)
    return FrameState(t=t, progress=progress, intensities=s, walk_phase=t, seed=seed)


def _blocks(scape, states, cues=None, start=0, n=SR // 10):
    """Consecutive blocks of n samples gliding through the given states (one per join)."""
    cues = cues or [Cues()] * len(states)
    return [scape.block(start + k * n, n, a, b, ca, cb)
            for k, (a, b, ca, cb) in enumerate(zip(states, states[1:], cues, cues[1:]))]


def _steady(sound, state, seconds, cues=Cues(), start=SR * 10):
    """`seconds` of sound at one state (t advancing), from a point past the opening swell."""
    scape = Soundscape(sound, 4)
    frames = int(seconds * 10)
    states = [state.with_(t=state.t + k / 10) for k in range(frames + 1)]
    return np.concatenate(_blocks(scape, states, [cues] * (frames + 1), start=start))


# ------------------------------------------------------------------ the synthesis

def test_same_state_and_seed_same_samples():
    a, b = Soundscape(_settings().sound, 5), Soundscape(_settings().sound, 5)
    s0, s1 = _state(0.7, t=12.0), _state(0.72, t=12.1)
    c0, c1 = Cues(0.4, 0.6, 2, 3, 0.3), Cues(0.45, 0.55, 2, 3, 0.32)
    x = a.block(123456, 1600, s0, s1, c0, c1)
    assert x.dtype == np.float32 and x.shape == (1600, 2)
    assert np.array_equal(x, b.block(123456, 1600, s0, s1, c0, c1))
    assert np.array_equal(x, a.block(123456, 1600, s0, s1, c0, c1))     # nothing carried between calls
    assert not np.array_equal(x, a.block(123456, 1600, s0.with_(progress=0.9, intensities={}), s1, c0, c1))


def test_a_segment_makes_the_same_samples_as_the_whole_film():
    """A segment is fed its whole groups of frames (as the renderer's generation blocks give them)
    and keeps its own: its samples are the whole film's, to the bit, wherever the cut falls."""
    sound = _settings().sound
    frames = [(i, _state(i / 40, t=i / 10)) for i in range(40)]
    cues = [Cues(0.3 + i / 100, 0.5, i // 14, i // 14 + 1, (i % 14) / 14) for i in range(40)]

    def film(part, keep=None, tail=None):
        fs = FilmSound(Soundscape(sound, 4), 10, keep)
        out = [b for (i, s) in part for b in fs.add(i, s, cues[i])]
        return out + fs.finish(*(tail or (None, None)))

    from conftest import sample_span as span

    whole = film(frames)
    end = sum(len(b) for _, b in whole)
    assert end == 40 * SR // 10                    # as long as the picture, to the sample
    for at in (17, 24):                            # a cut inside a group of frames, and between two
        cut = at * SR // 10
        lo, hi = at - at % GROUP, -(-at // GROUP) * GROUP
        first = film(frames[:hi], keep=range(0, at), tail=(frames[hi][1], cues[hi]))
        second = film(frames[lo:], keep=range(at, 40))
        assert np.array_equal(span(first, 0, cut), span(whole, 0, cut))
        assert np.array_equal(span(second, cut, end), span(whole, cut, end))
        # nothing of the other segment's frames comes out, besides the padding that concat cuts away
        assert min(s for s, _ in second) == cut - PAD_SAMPLES
        assert max(s + len(b) for s, b in first) == cut + PAD_SAMPLES
        # the padding continues the segment's sound without a step
        padded = np.concatenate([span(first, cut - 5, cut), span(first, cut, cut + 5)])
        assert np.isfinite(padded).all() and np.abs(np.diff(padded, axis=0)).max() < 0.05


def test_several_frames_in_one_call_sound_as_one_call_each():
    """Soundscape.frames (a film's group of frames) is block() per frame, up to float rounding."""
    scape = Soundscape(_settings().sound, 4)
    # at t = 14.1 s a lapse is fading out over these frames (darkness 0.81 -> 0.05), crush rising
    states = [_state(0.3 + k / 20, t=14.1 + k / 30, lapses=0.4, precision_loss=k / 8) for k in range(9)]
    cues = [Cues(0.4 + k / 50, 0.5, 1, 2, k / 9) for k in range(9)]
    bounds = [round(SR * 14.1) + k * (SR // 30) for k in range(9)]
    one = scape.frames(bounds, states, cues)
    each = np.concatenate([scape.block(bounds[k], bounds[k + 1] - bounds[k], states[k], states[k + 1],
                                       cues[k], cues[k + 1]) for k in range(8)])
    assert one.shape == each.shape == (8 * (SR // 30), 2)
    assert np.abs(one - each).max() < 1e-5 and np.abs(each).max() > 0.01


def test_no_clicks_at_block_joins_even_when_the_state_jumps():
    scape = Soundscape(_settings().sound, 4)
    # the course runs on, a performer revives (everything heals at once), then decay jumps back
    states = ([_state(0.75, t=20 + k / 30, lapses=0.0, precision_loss=0.0) for k in range(30)]
              + [_state(0.0, t=21 + k / 30) for k in range(10)]
              + [_state(0.85, t=21.4 + k / 30, lapses=0.0, precision_loss=0.0) for k in range(30)])
    cues = [Cues(0.5, 0.5, k // 20, k // 20 + 1, (k % 20) / 20) for k in range(len(states))]
    blocks = _blocks(scape, states, cues, start=SR * 20, n=SR // 30)
    x = np.concatenate(blocks)
    jumps = np.abs(np.diff(x, axis=0)).max(axis=1)
    joins = np.cumsum([len(b) for b in blocks])[:-1] - 1
    inside = np.delete(jumps, joins)
    assert jumps[joins].max() <= inside.max() + 1e-6          # a join is like any other sample step
    assert jumps.max() < 0.06                                  # and no step is a click (full scale = 1)


def test_block_size_does_not_change_the_sound():
    scape = Soundscape(_settings().sound, 4)
    s = _state(0.6, t=40.0)
    start = SR * 40
    one = scape.block(start, 3 * SR, s, s)
    cuts = ((0, 1000), (1000, 17), (1017, 3 * SR - 1017))
    pieces = np.concatenate([scape.block(start + k, n, s, s) for k, n in cuts])
    assert np.allclose(one, pieces, atol=1e-5)


@pytest.mark.parametrize("level", [1.0, 0.3])
def test_level_is_bounded_whatever_the_state(level):
    sound = _settings(f"sound.level={level}", "sound.drone=1", "sound.chords=1", "sound.motif=1",
                      "sound.space=0.9").sound
    scape = Soundscape(sound, 3)
    rng = np.random.default_rng(0)
    names = list(_state().intensities)
    peak = 0.0
    for k in range(12):
        a = FrameState(t=k, intensities={n: float(rng.choice([0.0, 1.0, rng.random()])) for n in names}, seed=k)
        b = FrameState(t=k + 0.1, intensities={n: float(rng.random()) for n in names}, seed=k)
        x = scape.block(SR * 60 + k * 1600, 1600, a, b, Cues(1.0, 1.0, 0, 1, 0.5), Cues(0.0, 1.0, 1, 2, 0.1))
        assert np.isfinite(x).all()
        peak = max(peak, float(np.abs(x).max()))
    assert 0.2 * level < peak <= level


def test_the_sound_forgets_with_the_course():
    """Quieter and noisier stage by stage: RMS falls, spectral flatness rises."""
    sound = _settings().sound
    figures = [measure(_steady(sound, _state(p, t=100.0, lapses=0.0), 4.0), SR) for p in (0.0, 0.5, 1.0)]
    rms = [f.rms_db for f in figures]
    flatness = [f.flatness for f in figures]
    assert rms[0] > rms[1] + 1.0 > rms[2] + 2.0, rms
    assert flatness[0] < flatness[1] < flatness[2] and flatness[2] > 10 * flatness[0], flatness
    assert -30 < rms[0] < -15                                     # present, with headroom


def test_voices_die_with_their_symptom_but_the_root_stays():
    chords = _settings("sound.drone=0", "sound.motif=0", "sound.follow.hiss=").sound     # the voices alone
    drone = _settings("sound.chords=0", "sound.motif=0", "sound.follow.hiss=").sound
    voices = chords.follow.voices                                   # plaques, by default
    alive = measure(_steady(chords, _state(**{voices: 0.0}), 1.0), SR).rms_db
    dead = measure(_steady(chords, _state(**{voices: 1.0}), 1.0), SR).rms_db
    assert alive > -40 and dead == -np.inf

    def level_at(x, hz):
        spectrum = np.abs(np.fft.rfft(x.mean(axis=1) * np.hanning(len(x))))
        f = np.fft.rfftfreq(len(x), 1 / SR)
        return spectrum[np.abs(f - hz) < 2].max()

    root, fifth = 440 * 2 ** ((38 - 69) / 12), 440 * 2 ** ((45 - 69) / 12)
    healthy, gone = _steady(drone, _state(**{voices: 0.0}), 2.0), _steady(drone, _state(**{voices: 1.0}), 2.0)
    assert level_at(gone, root) > 0.5 * level_at(healthy, root)
    assert level_at(gone, fifth) < 0.01 * level_at(healthy, fifth)


def test_pitch_drifts_with_its_symptom():
    drone = _settings("sound.chords=0", "sound.motif=0", "sound.drone=1").sound
    root = 440 * 2 ** ((38 - 69) / 12)

    def pitches(intensity):
        # left channel of a vivid picture: mostly the voice detuned down (the other is 8 cents up)
        x = _steady(drone, _state(**{drone.follow.drift: intensity}), 24.0, Cues(0.5, 1.0, 0, 0, 0.0))[:, 0]
        out = []
        for w in x.reshape(12, -1):                     # the root's pitch every 2 s, to ~0.03 Hz
            spectrum = np.abs(np.fft.rfft(w * np.hanning(len(w)), 16 * len(w)))
            f = np.fft.rfftfreq(16 * len(w), 1 / SR)
            near = np.abs(f - root) < 3
            out.append(f[near][np.argmax(spectrum[near])])
        return np.array(out)

    steady, drifting = pitches(0.0), pitches(1.0)
    assert np.ptp(steady) < 0.15
    assert np.ptp(drifting) > 2.0                      # 73 Hz wandering over more than 45 cents


def test_precision_loss_lowers_bit_depth_and_sample_rate():
    sound = _settings().sound
    clean = _steady(sound, _state(0.3, precision_loss=0.0), 1.0)[:, 0]
    crushed = _steady(sound, _state(0.3, precision_loss=1.0), 1.0)[:, 0]
    held = lambda x: float(np.mean(x[1:] == x[:-1]))
    assert held(clean) < 0.05 and held(crushed) > 0.7        # samples held: 16 kHz -> 4 kHz
    assert len(np.unique(clean)) > 2000 and len(np.unique(crushed)) <= 2 ** 4 + 1  # 4 bits


def test_each_memory_has_a_phrase_that_fades_with_forgetting():
    motif = _settings("sound.drone=0", "sound.chords=0", "sound.motif=1", "sound.follow.hiss=").sound  # the phrase alone
    at = lambda m: Cues(0.5, 0.5, m, m, 0.0)
    loud = [measure(_steady(motif, _state(forgetting=x), 10.0, at(0)), SR).rms_db for x in (0.0, 0.5, 1.0)]
    assert loud[0] > loud[1] > loud[2] and loud[2] == -np.inf, loud
    a, b = (_steady(motif, _state(), 10.0, at(m)) for m in (0, 1))
    assert np.abs(a - b).max() > 0.05                        # another memory, another phrase
    travelling = _steady(motif, _state(), 10.0, Cues(0.5, 0.5, 0, 1, 0.5))
    assert np.sqrt(np.mean(travelling ** 2)) < 0.5 * np.sqrt(np.mean(a ** 2))   # heard near its memory


def test_silence_falls_with_the_pictures_blackouts(tiny_checkpoint):
    from installation.audio.features import cues_for
    from installation.engine import Engine
    settings = settings_from_dict({}, [f"model.path={tiny_checkpoint}", "model.device=cpu", "display.grain=0",
                                       f"sound.sample_rate={SR}"])
    ts = np.arange(0, 18, 1 / 30)
    dark = np.array([darkness(t, 1.0, 3) for t in ts])
    black = np.flatnonzero(dark == 1.0)
    frames = range(black[0] - 25, black[0] + 25)          # into a lapse, from the light
    engine = Engine.from_settings(settings, 32, 32)
    fs = FilmSound(Soundscape(settings.sound, len(engine.anchors)), 30)
    picture, blocks = {}, []
    for i in frames:
        state = _state(0.5, t=ts[i], seed=3, lapses=1.0).with_(walk_phase=ts[i])
        frame = engine.render(state)
        picture[i] = frame.mean()
        blocks += fs.add(i, state, cues_for(engine, state, frame))
    blocks += fs.finish()
    engine.close()
    from conftest import sample_span
    sound = {i: np.abs(sample_span(blocks, fs.sample_of(i), fs.sample_of(i + 1))).max() for i in frames}
    for i in frames[:-1]:
        assert (picture[i] == 0) == (sound[i] < 1e-6) or 0 < dark[i] < 1 or 0 < dark[i + 1] < 1, i
    assert any(picture[i] == 0 for i in frames) and any(sound[i] > 1e-2 for i in frames[:-1])


# ------------------------------------------------------------------ live, without a device

class FakeStream:
    def __init__(self, sd, **kwargs):
        self.sd, self.kwargs = sd, kwargs
        self.active = False
        sd.streams.append(self)

    def start(self):
        self.active = True

    def stop(self):
        self.active = False

    def close(self):
        self.closed = True

    def play(self, frames):
        out = np.full((frames, 2), 7.0, np.float32)
        self.kwargs["callback"](out, frames, None, types.SimpleNamespace(output_underflow=False))
        return out


def fake_sounddevice(missing=0):
    """A stand-in for the sounddevice module: `missing` first attempts find no device."""
    sd = types.SimpleNamespace(streams=[], attempts=0, rescans=0)
    sd.PortAudioError = type("PortAudioError", (Exception,), {})

    def query_devices(device=None, kind=None):
        sd.attempts += 1
        if sd.attempts <= missing:
            raise ValueError(f"No output device matching {device!r}")
        return {"name": "Fake Out", "default_samplerate": 44100.0}

    sd.query_devices = query_devices
    sd.check_output_settings = lambda **kw: None
    sd.OutputStream = lambda **kw: FakeStream(sd, **kw)
    sd._terminate = lambda: None
    sd._initialize = lambda: setattr(sd, "rescans", sd.rescans + 1)
    return sd


def _wait(predicate, seconds=10.0):
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def _live(sd, *overrides):
    sound = LiveSound(_settings("sound.retry_s=0.05", *overrides, rate=SR).sound, n_memories=3, loader=lambda: sd)
    sound.start()
    sound.feed(_state(0.2, t=1.0), Cues())
    return sound


def test_the_callback_plays_the_queue_and_fills_silence_on_underrun():
    sd = fake_sounddevice()
    sound = _live(sd, "sound.device=Fake")
    _wait(lambda: sd.streams and sd.streams[0].active and sound._queue.qsize() >= 4)
    stream = sd.streams[0]
    assert stream.kwargs["latency"] == "high" and stream.kwargs["device"] == "Fake"
    sound._stop.set()                                  # the producer stalls; the card plays on
    sound._thread.join()
    queued = sound._queue.qsize() * round(live_module.BLOCK_S * SR)
    out = stream.play(queued)
    assert np.isfinite(out).all() and np.abs(out).max() > 0 and sound.underruns == 0
    out = stream.play(500)                             # nothing left: silence, counted
    assert np.all(out == 0) and sound.underruns == 1
    stream.kwargs["callback"](None, 10, None, None)    # whatever PortAudio hands it, it never raises
    stream.kwargs["callback"](np.zeros((10, 2), np.float32), 10, None,
                              types.SimpleNamespace(output_underflow=True))
    assert sound.errors == 1 and sound.underruns >= 2
    assert "underruns" in sound.hud_line()
    sound.close()


def test_no_portaudio_one_log_line_and_the_piece_runs_on_silent(caplog):
    def missing():
        raise OSError("PortAudio library not found")
    with caplog.at_level(logging.INFO, logger="lapses.sound"):
        sound = LiveSound(_settings().sound, 3, loader=missing)
        sound.start()
        for k in range(5):
            sound.feed(_state(t=k / 30), Cues())
        sound.close()
    assert len(caplog.records) == 1 and "PortAudio" in caplog.text and "silent" in caplog.text
    assert sound.state == "off" and "off" in sound.hud_line()


def test_a_missing_device_is_looked_for_by_name_until_it_appears(caplog):
    sd = fake_sounddevice(missing=3)
    with caplog.at_level(logging.INFO, logger="lapses.sound"):
        sound = _live(sd, "sound.device=USB")
        _wait(lambda: sound.state == "playing")
        sound.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "USB" in warnings[0].getMessage()   # one line, not one per attempt
    assert sd.attempts == 4 and sd.rescans >= 3                        # PortAudio re-scanned each time
    assert sound.sample_rate == SR and "Fake Out" in caplog.text


def test_a_device_that_will_not_start_is_one_log_line(caplog):
    sd = fake_sounddevice()

    def refuse(stream):
        raise sd.PortAudioError("Device unavailable")
    FakeStream_start, FakeStream.start = FakeStream.start, refuse
    try:
        with caplog.at_level(logging.INFO, logger="lapses.sound"):
            sound = _live(sd)
            _wait(lambda: len(sd.streams) >= 4)           # tried again and again
            sound.close()
    finally:
        FakeStream.start = FakeStream_start
    assert [r.levelno for r in caplog.records] == [logging.WARNING] and "unavailable" in caplog.text
    assert sound.state == "silent" and all(getattr(st, "closed", False) for st in sd.streams)


def test_a_lost_device_is_reopened(caplog):
    sd = fake_sounddevice()
    with caplog.at_level(logging.INFO, logger="lapses.sound"):
        sound = _live(sd)
        _wait(lambda: sd.streams and sd.streams[0].active)
        sd.streams[0].kwargs["finished_callback"]()       # PortAudio gave up on it (unplugged)
        sd.streams[0].active = False
        _wait(lambda: len(sd.streams) == 2 and sd.streams[1].active)
        sound.close()
    assert "lost" in caplog.text and caplog.text.count("playing on") == 2


def test_the_live_app_feeds_the_sound_and_shows_it(tiny_checkpoint, monkeypatch):
    from installation.app import App, RunOptions
    from installation.hud import FrameTimes, Hud
    from installation.piece import Piece
    sd = fake_sounddevice()
    monkeypatch.setattr(live_module, "load_sounddevice", lambda: sd)
    s = settings_from_dict({}, [f"model.path={tiny_checkpoint}", "model.device=cpu", "display.fullscreen=false",
                                "display.width=64", "display.height=64", "display.fps_limit=30",
                                f"sound.sample_rate={SR}", "inputs.osc.port=0"])
    fed = []
    original = LiveSound.feed
    monkeypatch.setattr(LiveSound, "feed",
                        lambda self, state, cues=None: (fed.append((state, cues)), original(self, state, cues)))
    App(s).run(RunOptions(windowed=True, seconds=1.0), Piece(s))
    assert len(fed) > 5 and fed[-1][0].t > fed[0][0].t and isinstance(fed[-1][1], Cues)
    assert sd.streams and sd.streams[0].kwargs["samplerate"] == SR
    import pygame
    pygame.font.init()
    lines = Hud(480).lines(Piece(s), FrameTimes(), "cpu", "tiny", sound="sound Fake Out 16 kHz   underruns 3")
    assert any("underruns 3" in text for text, _ in lines)


# ------------------------------------------------------------------ films and the sound command

def _cli(*args):
    from installation.cli import main
    return main([str(a) for a in args])


def _audio_of(path):
    with av.open(str(path)) as c:
        a, v = c.streams.audio[0], c.streams.video[0]
        chunks, positions = [], []
        for f in c.decode(a):
            x = f.to_ndarray()
            chunks.append(x)
            positions.append(round(f.pts * f.time_base * a.rate) + np.arange(x.shape[1]))
        x, p = np.concatenate(chunks, axis=1), np.concatenate(positions)
        return a.codec_context.name, a.rate, a.duration * a.time_base, v.frames, x[:, p >= 0]


def test_a_film_carries_aac_sound_as_long_as_its_picture_and_segments_join(tiny_checkpoint, tmp_path):
    common = ["--model", tiny_checkpoint, "--seconds", 1.5, "--fps", 10, "--size", "64x64", "--from", 0.3,
              "--to", 0.9, "--quiet", "--set", f"sound.sample_rate={SR}"]
    whole, s1, s2, joined = (tmp_path / f"{n}.mp4" for n in ("whole", "s1", "s2", "joined"))
    for out, extra in ((whole, []), (s1, ["--segment", "1/2"]), (s2, ["--segment", "2/2"])):
        assert _cli("render", *common, "--out", out, *extra) == 0
    assert _cli("concat", joined, s1, s2) == 0
    codec, rate, duration, frames, a = _audio_of(whole)
    assert (codec, rate, frames) == ("aac", SR, 15)
    assert duration == frames / 10                                 # the track's own length: exact
    assert abs(a.shape[1] - frames * SR / 10) <= 1024              # decoded: within one AAC frame
    codec, rate, duration, frames, b = _audio_of(joined)
    assert (codec, rate, frames, duration) == ("aac", SR, 15, 1.5)
    n = int(1.5 * SR)
    assert np.sqrt(np.mean((a[:, :n] - b[:, :n]) ** 2)) < 0.2 * np.sqrt(np.mean(a[:, :n] ** 2))


@pytest.mark.parametrize("n", [100, 4096, 5000, 3 * SR + 123])
def test_the_meter_fed_in_blocks_gives_the_figures_of_the_whole(n):
    """`sound` measures each stage as it goes, so an hour's film is not held in memory: fed in
    uneven blocks, the Meter gives what the whole stretch measures (silences across block ends included)."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 2)) * 0.1
    x[n // 4:3 * n // 4] = 0.0
    meter = Meter(SR)
    cuts = [0, *sorted(rng.integers(0, n, size=9)), n]
    for a, b in zip(cuts, cuts[1:]):
        meter.add(x[a:b])
    f = meter.figures()
    mono = x.mean(axis=1)
    assert meter.samples == n
    assert f.rms_db == pytest.approx(20 * np.log10(np.sqrt(np.mean(x * x))), abs=1e-9)
    assert f.peak_db == pytest.approx(20 * np.log10(np.abs(x).max()), abs=1e-12)
    assert f.flatness == pytest.approx(spectral_flatness(mono, SR), rel=1e-9)
    w = SR // 20
    windows = np.sqrt(np.mean(mono[:n // w * w].reshape(-1, w) ** 2, axis=1)) if n >= w else np.zeros(0)
    assert f.silent == pytest.approx(float(np.mean(windows < 1e-3)) if windows.size else 0.0)
    assert (f.silent > 0) == (n >= 4 * w)          # half of it silent: a whole window from 4 on


def test_each_stage_is_measured_on_the_sound_under_its_own_frames():
    """The sound comes a group of frames behind the pictures; a stage shorter than a group used to
    get none of its own samples (a row of -inf dB, "0% silent") and lend them to the next."""
    sound = FilmSound(Soundscape(_settings().sound, 4), 30)
    stages = StageMeters(sound)
    names = ["a"] * 5 + ["b"] * 3 + ["c"] * 16                     # b: three frames, inside one group
    for i, name in enumerate(names):
        stages.frame(i, name, i / 23)
        for start, samples in sound.add(i, _state(i / 23, t=i / 30)):
            stages.add(start, samples)
    for start, samples in sound.finish():
        stages.add(start, samples)
    got = {name: row[2].samples for name, row in stages.rows.items()}
    assert got == {"a": sound.sample_of(5), "b": sound.sample_of(8) - sound.sample_of(5),
                   "c": sound.sample_of(24) - sound.sample_of(8)}
    assert stages.rows["b"][:2] == [5 / 23, 7 / 23]
    short = Meter(SR)
    short.add(np.zeros((SR // 100, 2)))                              # 10 ms of silence: less than a window
    assert short.figures().silent == 1.0


def test_sound_command_writes_the_soundtrack_and_its_figures(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "lapses.wav"
    assert _cli("sound", "--model", tiny_checkpoint, "--out", out, "--seconds", 3, "--from", 0, "--to", 1,
                "--quiet", "--set", f"sound.sample_rate={SR}") == 0
    x, rate = read_wav(out)
    assert rate == SR and x.shape == (3 * SR, 2) and 0 < np.abs(x).max() <= 0.5
    printed = capsys.readouterr().out
    assert "healthy" in printed and "gone" in printed and "flatness" in printed and "RMS" in printed
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("args, words", [
    (["--out", "x.mp3"], ".wav"),
    (["--from", "0.1"], "--to"),
    (["--seconds", "0"], "--seconds"),
    (["--out", "/no/such/dir/x.wav"], "does not exist"),
])
def test_bad_sound_arguments_exit_2(tiny_checkpoint, tmp_path, capsys, args, words, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = {"--out": str(tmp_path / "x.wav"), "--seconds": "1"}
    base.update(dict(zip(args[::2], args[1::2])))
    assert _cli("sound", "--model", tiny_checkpoint, *[x for kv in base.items() for x in kv]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_an_existing_wav_is_never_overwritten(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "s.wav"
    out.write_bytes(b"precious")
    assert _cli("sound", "--model", tiny_checkpoint, "--out", out, "--seconds", 1) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"precious"


@pytest.mark.parametrize("override, words", [
    ("sound.level=2", "<= 1.0"),
    ("sound.scale=blues", "pentatonic"),
    ("sound.follow.drift=nope", "weight_noise"),
    ("sound.sampel_rate=1", "sample_rate"),
])
def test_sound_settings_name_their_key(override, words):
    with pytest.raises(SettingsError) as e:
        settings_from_dict({}, [override])
    assert str(e.value).startswith(override.split("=")[0].rsplit(".", 1)[0]) and words in str(e.value)


def test_ntsc_frame_rates_are_exact():
    from fractions import Fraction
    from installation.audio.track import frame_rate
    assert frame_rate(29.97) == Fraction(30000, 1001) and frame_rate(23.976) == Fraction(24000, 1001)
    assert frame_rate(59.94) == Fraction(60000, 1001)
    assert frame_rate(30) == 30 and frame_rate(7.5) == Fraction(15, 2) and frame_rate(25) == 25
