"""Offline rendering: real MP4 files decoded back, determinism, segments, and live == film."""
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import run_main

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args):
    return run_main("installation", *args, cwd=ROOT)


def _decode(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = (s.codec_context.name, s.codec_context.width, s.codec_context.height)
        return info, [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_a_ten_second_720p_render_plays(tiny_checkpoint, tmp_path):
    out = tmp_path / "film.mp4"
    r = _cli("render", "--model", tiny_checkpoint, "--out", out, "--seconds", 10, "--fps", 12,
             "--size", "1280x720", "--from", 0, "--to", 1, "--quiet")
    assert r.returncode == 0, r.stderr
    (codec, w, h), frames = _decode(out)
    assert (codec, w, h) == ("h264", 1280, 720) and len(frames) == 120
    # the course was compressed into the film: the last frames are far from the first
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 3
    assert not list(tmp_path.glob(".*partial*"))


def test_same_arguments_same_frames_and_segments_join_exactly(tiny_checkpoint, tmp_path):
    common = ["--model", tiny_checkpoint, "--seconds", 2, "--fps", 10, "--size", "160x96", "--crf", 0,
              "--from", 0.2, "--to", 0.9, "--quiet"]
    a, b, s1, s2, joined = (tmp_path / f"{n}.mp4" for n in ("a", "b", "s1", "s2", "joined"))
    for out, extra in ((a, []), (b, []), (s1, ["--segment", "1/2"]), (s2, ["--segment", "2/2"])):
        r = _cli("render", *common, "--out", out, *extra)
        assert r.returncode == 0, r.stderr
    r = _cli("concat", joined, s1, s2)
    assert r.returncode == 0, r.stderr
    _, fa = _decode(a)
    _, fb = _decode(b)
    _, fj = _decode(joined)
    assert len(fa) == len(fb) == len(fj) == 20
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))
    assert all(np.array_equal(x, y) for x, y in zip(fa, fj))
    # a segment encoded otherwise (another preset, or NVENC on another machine) cannot be copied in
    other = tmp_path / "s2-ultrafast.mp4"
    r = _cli("render", *common, "--out", other, "--segment", "2/2", "--preset", "ultrafast")
    assert r.returncode == 0, r.stderr
    r = _cli("concat", tmp_path / "bad.mp4", s1, other)
    assert r.returncode == 2 and "encoding differs" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad.mp4").exists()
    junk = tmp_path / "notes.mp4"
    junk.write_text("not a film")
    r = _cli("concat", tmp_path / "bad.mp4", s1, junk)
    assert r.returncode == 2 and f"{junk}: not a film that can be joined" in r.stderr and "Errno" not in r.stderr
    assert not (tmp_path / "bad.mp4").exists()


def test_live_screenshot_equals_the_rendered_frame_for_its_state(tiny_checkpoint, tmp_path):
    from installation.app import App, RunOptions
    from installation.piece import Piece
    from installation.settings import settings_from_dict
    s = settings_from_dict({}, [f"model.path={tiny_checkpoint}", "model.device=cpu", "display.fullscreen=false",
                                "display.width=160", "display.height=96", "display.fps_limit=0",
                                "course.duration=20s", "inputs.osc.port=0"])
    shots = tmp_path / "shots"
    report = App(s).run(RunOptions(windowed=True, seconds=60, screenshot_dir=shots,
                                   script={8: ["="], 10: ["s"], 11: ["escape"]}), Piece(s))
    (shot,) = report.screenshots
    frames = tmp_path / "frames"
    r = _cli("render", "--model", tiny_checkpoint, "--replay", shot.with_suffix(".json"), "--frames", frames,
             "--size", "160x96", "--quiet")   # as the README writes it: a replay needs no --seconds
    assert r.returncode == 0, r.stderr
    rendered = cv2.imread(str(frames / "frame_0000000.png"))
    assert np.array_equal(rendered, cv2.imread(str(shot)))
    state = json.loads(shot.with_suffix(".json").read_text())
    assert state["t"] > 0 and state["intensities"]


def test_state_log_replays_at_another_size(tiny_checkpoint, tmp_path):
    log = tmp_path / "states.jsonl"
    r = _cli("render", "--model", tiny_checkpoint, "--frames", tmp_path / "a", "--seconds", 0.5, "--fps", 8,
             "--size", "64x64", "--state-log", log, "--from", 0.5, "--to", 0.6, "--quiet")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["frame"] for x in lines] == [0, 1, 2, 3]
    r = _cli("render", "--model", tiny_checkpoint, "--replay", log, "--frames", tmp_path / "b", "--seconds", 1,
             "--size", "128x128", "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [f"frame_{i:07d}.png" for i in range(4)]
    assert cv2.imread(str(tmp_path / "b" / "frame_0000003.png")).shape == (128, 128, 3)


@pytest.mark.parametrize("args, words", [
    (["--size", "321x240"], "even"),
    (["--size", "100000x100000"], "libx264 takes at most 16384 pixels a side"),
    (["--fps", "0"], "--fps"),
    (["--from", "0.1"], "--to"),
    (["--segment", "3/2"], "--segment"),
    (["--out", "/no/such/dir/x.mp4"], "does not exist"),
    (["--out", "film.avi"], ".mp4"),
    (["--preset", "bogus"], "--preset bogus: not a preset"),
    (["--encoder", "x264", "--preset", "p4"], "an NVENC preset"),
])
def test_bad_render_arguments_exit_2_before_any_work(tiny_checkpoint, tmp_path, args, words):
    base = {"--out": str(tmp_path / "x.mp4"), "--size": "64x64", "--fps": "10"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    flat = [x for kv in base.items() for x in kv] + [a for a in args if a.startswith("--") and a not in base]
    r = _cli("render", "--model", tiny_checkpoint, "--seconds", 1, *flat)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("content, words", [
    (b"", "holds no states"),
    (b'{"a": 1}\n', "not a state line"),
    (b"model: {path: x}\n", "not a state line"),
    (b"\xff\xfe\x00junk", "--replay"),
])
def test_a_wrong_replay_file_exits_2_before_any_work(tiny_checkpoint, tmp_path, content, words):
    log = tmp_path / "states.jsonl"
    log.write_bytes(content)
    out = tmp_path / "x.mp4"
    r = _cli("render", "--model", tiny_checkpoint, "--replay", log, "--out", out, "--size", "64x64")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr and "Traceback" not in r.stderr and "encoder:" not in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mp4" or "partial" in p.name) == []


def test_frames_that_name_a_file_exit_2_even_with_overwrite(tiny_checkpoint, tmp_path):
    f = tmp_path / "frames"
    f.write_bytes(b"precious")
    r = _cli("render", "--model", tiny_checkpoint, "--frames", f, "--seconds", 1, "--size", "64x64", "--overwrite")
    assert r.returncode == 2 and "is a file" in r.stderr and "Traceback" not in r.stderr
    assert f.read_bytes() == b"precious"


def test_segments_share_a_frames_folder_and_only_a_clash_needs_overwrite(tiny_checkpoint, tmp_path):
    f = tmp_path / "frames"
    common = ["render", "--model", tiny_checkpoint, "--frames", f, "--seconds", 0.4, "--fps", 10, "--size", "32x32"]
    assert _cli(*common, "--segment", "1/2").returncode == 0
    assert _cli(*common, "--segment", "2/2").returncode == 0                # its own frames: no --overwrite
    assert sorted(p.name for p in f.iterdir()) == [f"frame_{k:07d}.png" for k in range(4)]
    before = (f / "frame_0000001.png").read_bytes()
    r = _cli(*common, "--segment", "1/2")                                     # again: would write over two
    assert r.returncode == 2 and "frame_0000000.png and 1 more" in r.stderr and "--overwrite" in r.stderr
    assert (f / "frame_0000001.png").read_bytes() == before
    assert _cli(*common, "--segment", "1/2", "--overwrite").returncode == 0


def test_sizes_past_h264_or_the_memory_are_refused_saying_what_is_possible(tiny_checkpoint, tmp_path):
    from installation.render import size_problem
    gb = 2**30
    assert size_problem(8192, 4320, 60, "veryfast", 64 * gb) is None           # H.264 level 6.2's largest
    assert size_problem(16384, 16, 30, "veryfast", None) is None
    assert "16384 pixels a side" in size_problem(16400, 16, 30, "veryfast", None)
    assert "7680x4320" in size_problem(8448, 8448, 30, "ultrafast", None)      # what does play, said
    assert "at most --fps 120" in size_problem(8192, 4320, 240, "veryfast", None)
    slow = size_problem(7680, 4320, 30, "veryslow", 8 * gb)
    assert "GB of memory" in slow and "8.0 GB available" in slow and "faster --preset" in slow
    assert size_problem(7680, 4320, 30, "ultrafast", 8 * gb) is None
    assert size_problem(30000, 30000, 30, None, None) is None                  # PNGs: no H.264 limit ...
    assert "--frames" in size_problem(30000, 30000, 30, None, 8 * gb)           # ... but memory
    frames = tmp_path / "frames"
    r = _cli("render", "--model", tiny_checkpoint, "--frames", frames, "--seconds", 1, "--size", "100000x100000")
    assert r.returncode == 2 and "GB of memory" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not frames.exists()


def test_progress_into_a_log_is_whole_lines_not_redraws(tiny_checkpoint, tmp_path):
    """stderr is a pipe here, as in a unit or a CI log: the bar's figures as lines, no carriage returns."""
    r = _cli("render", "--model", tiny_checkpoint, "--frames", tmp_path / "f", "--seconds", 2, "--fps", 8,
             "--size", "32x32")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if "frame/s" in line]
    assert lines[0].startswith("  0% 0/16 [") and lines[-1].startswith("100% 16/16 [") and len(lines) <= 4, lines


def test_render_without_seconds_asks_for_them(tiny_checkpoint, tmp_path):
    r = _cli("render", "--model", tiny_checkpoint, "--out", tmp_path / "x.mp4", "--size", "64x64")
    assert r.returncode == 2 and "--seconds" in r.stderr and "Traceback" not in r.stderr


def test_an_encoder_error_at_the_very_end_is_reported_not_waited_on_forever(tmp_path):
    """Two frames at one position fail only as the encoder flushes, after the end marker was
    taken: close() must raise (and leave no partial file), not wait for a marker that never comes."""
    import threading
    from installation.render import VideoSink
    sink = VideoSink(tmp_path / "x.mp4", 64, 48, 30.0, 18, "veryfast", sample_rate=48000)
    rgb, sound = np.zeros((48, 64, 3), np.uint8), np.zeros((1600, 2), np.float32)
    for _ in range(2):
        sink.write(0, rgb)
        sink.write_audio(0, sound)
    outcome = []

    def close():
        try:
            sink.close(ok=True)
            outcome.append("closed")
        except Exception as e:      # noqa: BLE001 - the encoder's own error, whatever it is
            outcome.append(e)
    t = threading.Thread(target=close, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "close() hung"
    assert outcome and isinstance(outcome[0], Exception)
    assert not (tmp_path / "x.mp4").exists() and not list(tmp_path.glob(".*partial*"))


def test_an_encoder_that_cannot_open_fails_at_once_and_leaves_nothing(tmp_path):
    """The codecs open as the sink is made (before its threads start): x264 refuses an odd size
    there, and the partial file goes with it."""
    from installation.render import VideoSink
    with pytest.raises(av.FFmpegError):
        VideoSink(tmp_path / "x.mp4", 63, 47, 30.0, 18, "veryfast", sample_rate=48000)
    assert list(tmp_path.iterdir()) == []


def test_the_sound_thread_hands_every_packet_to_the_muxer_before_the_end(tmp_path):
    """Sound written in small pieces, encoded on its own thread, muxed on the encoder's: the film
    holds all of it (AAC frames of 1024 samples, the last one padded), and the picture's frames."""
    from installation.render import VideoSink
    sink = VideoSink(tmp_path / "x.mp4", 64, 48, 30.0, 18, "veryfast", sample_rate=48000)
    tone = (0.3 * np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000)).astype(np.float32)
    for i in range(30):
        sink.write(i, np.full((48 * 3 // 2, 64), 100 + i, np.uint8))
        sink.write_audio(i * 1600, np.stack([tone[i * 1600:(i + 1) * 1600]] * 2, axis=1))
    sink.close(ok=True)
    with av.open(str(tmp_path / "x.mp4")) as c:
        video = sum(1 for _ in c.demux(c.streams.video[0]) if _.size)
    with av.open(str(tmp_path / "x.mp4")) as c:
        samples = sum(f.samples for f in c.decode(c.streams.audio[0]))
    assert video == 30
    assert 48000 <= samples <= 48000 + 2048


def test_a_replay_of_joined_screenshots_is_refused(tiny_checkpoint, tmp_path):
    log = tmp_path / "two.jsonl"
    r = _cli("render", "--model", tiny_checkpoint, "--frames", tmp_path / "a", "--seconds", 0.2, "--fps", 10,
             "--size", "32x32", "--state-log", log, "--quiet")
    assert r.returncode == 0, r.stderr
    first = log.read_text().splitlines()[0]
    log.write_text(first + "\n" + first + "\n")            # frame 0 twice, as two screenshots' .json cat'ed
    r = _cli("render", "--model", tiny_checkpoint, "--replay", log, "--out", tmp_path / "x.mp4", "--size", "32x32")
    assert r.returncode == 2 and "frame 0 does not come after" in r.stderr and "Traceback" not in r.stderr


def test_existing_film_is_never_overwritten(tiny_checkpoint, tmp_path):
    out = tmp_path / "film.mp4"
    out.write_bytes(b"precious")
    r = _cli("render", "--model", tiny_checkpoint, "--out", out, "--seconds", 1, "--size", "64x64")
    assert r.returncode == 2 and "--overwrite" in r.stderr and out.read_bytes() == b"precious"


def test_an_interrupted_render_leaves_nothing(tiny_checkpoint, tmp_path):
    from installation.engine import Engine
    from installation.render import RenderJob, VideoSink, frame_states, render
    from installation.settings import settings_from_dict
    s = settings_from_dict({}, [f"model.path={tiny_checkpoint}", "model.device=cpu"])
    engine = Engine.from_settings(s, 64, 64)
    out = tmp_path / "film.mp4"

    def states():
        for n, item in enumerate(frame_states(s, RenderJob(2, 10, 64, 64))):
            if n == 7:
                raise KeyboardInterrupt
            yield item

    with pytest.raises(KeyboardInterrupt):
        render(engine, states(), VideoSink(out, 64, 64, 10, 18, "veryfast"))
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.safetensors"]   # no film, no partial file


def test_a_killed_render_leaves_nothing_either(tiny_checkpoint, tmp_path):
    """systemctl stop, a scheduler's kill: SIGTERM cleans up as Ctrl-C does."""
    import signal
    import time
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    out = tmp_path / "film.mp4"
    p = subprocess.Popen([sys.executable, "-m", "installation", "render", "--model", str(tiny_checkpoint), "--out",
                          str(out), "--seconds", "600", "--size", "64x64", "--quiet"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".film.partial-*")) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "nothing was written" in err and "Traceback" not in err
    assert [q.name for q in tmp_path.iterdir()] == ["tiny.safetensors"]


def test_batched_generation_draws_each_frame_as_its_own_state(tiny_checkpoint):
    """render_batch: one generator call for frames sharing their weight damage; each frame is its
    own state's (walk, activation and output symptoms per frame), equal to a lone render up to the
    last bit of float rounding, and independent of the company it is generated in."""
    import torch
    from installation.engine import Engine
    from installation.render import RenderJob, frame_states
    from installation.settings import settings_from_dict
    s = settings_from_dict({}, [f"model.path={tiny_checkpoint}", "model.device=cpu", "course.duration=8h"])
    engine = Engine.from_settings(s, 96, 64)
    states = [st for _, st in frame_states(s, RenderJob(1.0, 8, 96, 64, start=0.55, end=0.55))]
    assert all(engine.weights.same_weights(states[0].intensities, x.intensities) for x in states)
    assert any(states[0].intensity(n) > 0 for n in ("static", "plaques", "feature_dropout"))
    together = engine.render_batch(states)
    alone = [engine.render(x, sync=True) for x in states]
    for a, b in zip(together, alone):
        assert np.abs(a.astype(int) - b).max() <= 2
    assert not np.array_equal(together[0], together[-1])          # frames differ: each has its own state
    swapped = engine.render_batch([states[0], states[3], states[2], states[1], *states[4:]])
    assert np.array_equal(swapped[0], together[0]) and np.array_equal(swapped[1], together[3])
    engine.close()


def test_the_encoders_yuv_frame_is_the_screens_frame():
    """Output.i420 (made at the generator's size, upscaled per plane, grain on Y) decodes to what
    the screen shows, as closely as converting the screen's RGB frame does; where the picture does
    not lie on whole chroma samples, or is enlarged less than twice, it is that conversion
    exactly. The bars are black in every plane, and the sound reads the same cues from either."""
    from skimage import data as skdata
    from installation.audio.features import picture_cues
    from installation.output import Output, OutputSpec, i420_planes
    small = np.ascontiguousarray(cv2.resize(skdata.astronaut(), (128, 128), interpolation=cv2.INTER_AREA))
    grey = np.ascontiguousarray(cv2.resize(skdata.camera(), (128, 128), interpolation=cv2.INTER_AREA)[..., None]
                                .repeat(3, axis=2))
    static = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)     # colour noise
    cases = [(p, spec) for p in (small, grey) for spec in (OutputSpec(1280, 720, grain=0.3, vignette=0.4),
                                                          OutputSpec(720, 1280, grain=0.04),
                                                          OutputSpec(1920, 1080, upscale="nearest", grain=0.04))]
    cases += [(static, OutputSpec(160, 96, grain=0.3)), (static, OutputSpec(96, 160, upscale="lanczos"))]
    for picture, spec in cases:
        out = Output(spec)
        screen = out(picture, 7)
        yuv = out.i420(picture, 7)
        W, H = spec.width, spec.height
        assert yuv.shape == (H * 3 // 2, W) and yuv.dtype == np.uint8
        via_rgb = cv2.cvtColor(cv2.cvtColor(screen, cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420)
        assert not np.array_equal(yuv, cv2.cvtColor(screen, cv2.COLOR_RGB2YUV_I420))   # made directly
        direct = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
        err_direct, err_rgb = np.abs(direct.astype(int) - screen), np.abs(via_rgb.astype(int) - screen)
        assert err_direct.mean() < max(0.6, 1.5 * err_rgb.mean()), (spec, err_direct.mean(), err_rgb.mean())
        assert np.percentile(err_direct, 99.9) <= max(3, np.percentile(err_rgb, 99.9))   # edges too
        sw, sh, x0, y0 = out.placement(*picture.shape[:2])
        for plane, black, k in zip(i420_planes(yuv, W, H), (16, 128, 128), (1, 2, 2)):
            inside = np.zeros(plane.shape, bool)
            inside[y0 // k:(y0 + sh) // k, x0 // k:(x0 + sw) // k] = True
            assert (plane[~inside] == black).all()                   # all four bars, every plane
        for a, b in zip(picture_cues(yuv), picture_cues(screen)):
            assert abs(a - b) < 0.02, (spec, picture_cues(yuv), picture_cues(screen))
    for spec in (OutputSpec(1280, 720, scale="fill", grain=0.3), OutputSpec(162, 96, grain=0.3),
                 OutputSpec(192, 128, grain=0.3)):
        out = Output(spec)          # a crop, bars of odd width, less than twice: the RGB frame, converted
        assert np.array_equal(out.i420(small, 3), cv2.cvtColor(out(small, 3), cv2.COLOR_RGB2YUV_I420))


def test_segments_hand_the_encoder_the_whole_films_frames_and_samples(tiny_checkpoint):
    """What two segments give the encoder — YUV frames and sound samples, before any encoding — is
    exactly what the whole film gives it over the same frames (the last frame of the first segment
    glides to the second's first, read from the same form of frame the whole film reads)."""
    from installation.audio import Soundscape
    from installation.audio.track import FilmSound
    from installation.engine import Engine
    from installation.render import RenderJob, frame_states, render, tail_state
    from installation.settings import settings_from_dict
    from conftest import sample_span as span

    class Capture:
        form = "i420"

        def __init__(self):
            self.frames, self.audio = {}, []

        def write(self, i, frame):
            self.frames[i] = frame

        def write_audio(self, start, samples):
            self.audio.append((start, samples))

        def close(self, ok):
            assert ok

    s = settings_from_dict({}, [f"model.path={tiny_checkpoint}", "model.device=cpu"])
    engine = Engine.from_settings(s, 160, 96)

    def run(job):
        sink, sound = Capture(), FilmSound(Soundscape(s.sound, len(engine.anchors)), job.fps)
        render(engine, frame_states(s, job, job.block_range()), sink, sound=sound, tail=tail_state(s, job),
               keep=job.frame_range())
        return sink, sound.sample_of

    whole_job = RenderJob(2.0, 10, 160, 96, start=0.2, end=0.9)
    whole, sample_of = run(whole_job)
    for k in range(2):
        job = RenderJob(2.0, 10, 160, 96, start=0.2, end=0.9, segment=(k, 2))
        part, _ = run(job)
        r = job.frame_range()
        assert sorted(part.frames) == list(r)
        assert all(np.array_equal(part.frames[i], whole.frames[i]) for i in r)
        lo, hi = sample_of(r.start), sample_of(r.stop)
        ours = span(part.audio, lo, hi)
        assert np.isfinite(ours).all() and np.array_equal(ours, span(whole.audio, lo, hi))
    engine.close()


def test_the_encoder_is_chosen_before_any_work_and_auto_falls_back_to_x264(tiny_checkpoint, tmp_path):
    """A GPU without a hardware encoder (A100, H100, H200) or no NVIDIA driver: --encoder nvenc is
    a clear refusal before any work, and auto, even told there is a CUDA GPU, takes x264."""
    from installation.render import choose_encoder, encoder_options, encoder_problem
    if encoder_problem("h264_nvenc", 64, 64, 18, "veryfast") is None:
        pytest.skip("this machine has a usable NVENC (the GPU test covers it)")
    encoder, why = choose_encoder("auto", 64, 64, 18, "veryfast", cuda=True)
    assert encoder == "libx264" and "NVENC cannot be used here" in why
    with pytest.raises(ValueError, match="an NVENC preset, and the film is encoded with x264"):
        choose_encoder("auto", 64, 64, 18, "p4", cuda=True)     # the fallback checks the preset too
    assert encoder_options("h264_nvenc", 0, "slow") == {"tune": "lossless", "preset": "p6"}
    assert choose_encoder("auto", 64, 64, 18, "veryfast", cuda=False) == ("libx264", "libx264 (no CUDA GPU)")
    assert encoder_options("h264_nvenc", 20, "veryfast") == {"rc": "vbr", "cq": "20", "b": "0", "preset": "p2"}
    r = _cli("render", "--model", tiny_checkpoint, "--seconds", 1, "--size", "64x64", "--out", tmp_path / "x.mp4",
             "--encoder", "nvenc")
    assert r.returncode == 2 and "--encoder nvenc" in r.stderr and "--encoder x264" in r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.glob("*x.mp4"))


@pytest.mark.gpu
def test_a_gpu_render_uses_the_hardware_encoder_where_there_is_one(tiny_checkpoint, tmp_path):
    """On a CUDA machine: the film renders on the GPU, with NVENC where the GPU has it, and decodes
    back as H.264 of the right length and size."""
    from installation.render import encoder_problem
    out = tmp_path / "gpu.mp4"
    r = _cli("render", "--model", tiny_checkpoint, "--out", out, "--seconds", 2, "--fps", 12,
             "--size", "640x360", "--from", 0, "--to", 1)
    assert r.returncode == 0, r.stderr
    nvenc = encoder_problem("h264_nvenc", 640, 360, 18, "veryfast") is None
    assert ("encoder: h264_nvenc" if nvenc else "encoder: libx264 (NVENC cannot be used here") in r.stdout
    (codec, w, h), frames = _decode(out)
    assert (codec, w, h) == ("h264", 640, 360) and len(frames) == 24


def test_a_half_frame_rounds_up():
    from installation.render import RenderJob
    assert RenderJob(3, 7.5, 64, 64).total_frames == 23 and RenderJob(2.5, 1, 64, 64).total_frames == 3
    assert RenderJob(2, 10, 64, 64).total_frames == 20 and RenderJob(0.01, 10, 64, 64).total_frames == 1
