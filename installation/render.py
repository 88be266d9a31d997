"""Offline rendering: the piece as a film, frame for frame as the room would have seen it.

Time comes from the frame index (t = i / fps). Each frame's state is a pure function of i, so a
render can be split into segments on several machines and joined (`concat`) without re-encoding.
Generation runs in this thread while a second thread encodes the picture (PyAV releases the GIL
while x264 works) and a third the sound (VideoSink), so on a CPU machine the encoder, not the
network, sets the pace: the x264 thread does nothing but x264 and the muxing, and takes each
frame without a copy. The target
file appears only when it is complete: a render that is interrupted leaves nothing behind.

The soundtrack (AAC) is made with the picture: frame i's sound covers samples
[i x rate / fps, (i + 1) x rate / fps) and glides from frame i's state to frame i+1's
(audio/track.py), so it lasts exactly as long as the video and segments sound like the whole.
"""
from __future__ import annotations

import json
import math
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from .audio.features import cues_for
from .audio.track import GROUP, FilmSound, frame_rate
from .course import CourseState
from .weights import WEIGHT_ORDER
from .engine import Engine
from .piece import Piece
from .state import FrameState

AUDIO_KBPS = 192                 # AAC stereo: transparent for slow, tonal sound
BLOCK = GROUP                    # frames generated together: a block of 8 consecutive frame indices
                                 # (i // BLOCK), split where the weight damage changes; the film's
                                 # sound is made in the same groups, so a segment's whole blocks
                                 # are its whole sound groups


@dataclass(frozen=True)
class RenderJob:
    seconds: float
    fps: float
    width: int
    height: int
    start: float | None = None      # course fraction at the first frame (--from); None: the live clock
    end: float | None = None        # course fraction at the last frame (--to)
    seed: int | None = None
    segment: tuple[int, int] = (0, 1)

    @property
    def total_frames(self) -> int:
        return max(1, math.floor(self.seconds * self.fps + 0.5))   # a half frame rounds up (round() halves to even)

    def frame_range(self) -> range:
        i, n = self.segment
        total = self.total_frames
        return range(i * total // n, (i + 1) * total // n)

    def block_range(self) -> range:
        """The segment's frames widened to whole generation blocks: a frame is generated in the
        same company whichever segment renders it, so segments join into exactly the whole film
        (the extra frames at a segment's edges are generated and dropped)."""
        r = self.frame_range()
        return range(r.start - r.start % BLOCK, min(self.total_frames, -(-r.stop // BLOCK) * BLOCK))


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
# NVENC has presets of its own, p1 (fastest) .. p7 (best); an x264 name picks the one of like speed
NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p4",
                 "medium": "p5", "slow": "p6", "slower": "p7", "veryslow": "p7", "placebo": "p7",
                 **{f"p{k}": f"p{k}" for k in range(1, 8)}}
NVENC_NEEDS = "NVENC needs an NVIDIA driver and a GPU that has it (A100, H100 and H200 have none)"


# H.264's largest level (6.2): at most 139 264 macroblocks (16 x 16 pixels) a frame and 16 711 680 a
# second (8192x4320 at 120 fps); libx264 opens no side longer than 16 384 pixels
H264_MAX_SIDE = 16384
H264_MAX_MACROBLOCKS = 139_264
H264_MAX_MACROBLOCKS_PER_S = 16_711_680
# host memory a render takes per pixel of its frame size: peak RSS from 640x360 to 1920x1080, 90 frames,
# a tiny model on 2 CPU cores (x264's lookahead and reference frames grow with the preset; NVENC keeps
# its own on the GPU, so its presets take ultrafast's figure; --frames is the PNG sink)
BYTES_PER_PIXEL = {"frames": 81, "ultrafast": 70, "superfast": 95, "veryfast": 123, "faster": 160, "fast": 200,
                   "medium": 229, "slow": 280, "slower": 331, "veryslow": 420, "placebo": 640}
BASE_BYTES = 600 * 2**20         # the process itself: Python, torch, a model
SIZES_THAT_PLAY = "3840x2160 (4K UHD), 4096x2160 (DCI 4K), 7680x4320 (8K UHD) or 8192x4320"


def available_memory() -> int | None:
    """Bytes of host memory available to a new job now (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def size_problem(width: int, height: int, fps: float, preset: str | None, available: int | None) -> str | None:
    """Why a render of this frame size cannot work (None: it can), said before any work starts:
    for a film (`preset` given) the encoder's and H.264's limits, for either the memory it would need
    (`available` bytes, None: unknown, not checked)."""
    size = f"--size {width}x{height}"
    if preset is not None:
        macroblocks = -(-width // 16) * -(-height // 16)
        if max(width, height) > H264_MAX_SIDE or macroblocks > H264_MAX_MACROBLOCKS:
            return (f"{size}: too large for an H.264 film: libx264 takes at most {H264_MAX_SIDE} pixels a side, "
                    f"and H.264's largest level (6.2, the most a player decodes) at most {H264_MAX_MACROBLOCKS} "
                    f"macroblocks of 16x16 pixels a frame (this size has {macroblocks}); films play at e.g. "
                    f"{SIZES_THAT_PLAY}. "
                    f"For larger pictures render PNGs with --frames DIR")
        if macroblocks * fps > H264_MAX_MACROBLOCKS_PER_S:
            return (f"{size} at --fps {fps:g}: more than H.264's largest level (6.2) decodes, "
                    f"{H264_MAX_MACROBLOCKS_PER_S} macroblocks of 16x16 pixels a second; at this size at most "
                    f"--fps {math.floor(H264_MAX_MACROBLOCKS_PER_S / macroblocks)}")
    per_pixel = BYTES_PER_PIXEL["frames" if preset is None else preset if preset in BYTES_PER_PIXEL else "ultrafast"]
    need = BASE_BYTES + width * height * per_pixel
    if available is not None and need > available:
        how = "--frames" if preset is None else f"--preset {preset}"
        return (f"{size}: a render this size needs about {need / 2**30:.1f} GB of memory ({per_pixel} bytes a "
                f"pixel with {how}) and this machine has {available / 2**30:.1f} GB available; render a smaller "
                f"size" + (", with a faster --preset," if preset is not None and preset != "ultrafast" else "")
                + " or on a machine with more memory")
    return None


def encoder_options(encoder: str, crf: int, preset: str) -> dict[str, str]:
    """The codec options for a quality (x264's CRF scale, 0 = lossless) and a speed preset."""
    if encoder == "h264_nvenc":     # constant quality on the same 0..51 scale, no bitrate cap
        if crf == 0:                # NVENC reads cq 0 as "choose for me": lossless is a tune of its own
            return {"tune": "lossless", "preset": NVENC_PRESETS[preset]}
        return {"rc": "vbr", "cq": str(crf), "b": "0", "preset": NVENC_PRESETS[preset]}
    return {"crf": str(crf), "preset": preset}


def encoder_problem(encoder: str, width: int, height: int, crf: int, preset: str) -> str | None:
    """Open the encoder as a film of this size would, and close it: None when it works, else why not.
    NVENC needs an NVIDIA driver and a GPU that has the encoder (A100, H100 and H200 have none)."""
    if encoder not in av.codecs_available:
        return f"this PyAV build has no {encoder}"
    ctx = av.CodecContext.create(encoder, "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = width, height, "yuv420p", Fraction(1, 30)
    ctx.options = encoder_options(encoder, crf, preset)
    try:
        ctx.open()
    except av.FFmpegError as e:
        return getattr(e, "strerror", None) or str(e)
    finally:
        del ctx
    return None


def choose_encoder(choice: str, width: int, height: int, crf: int, preset: str, cuda: bool) -> tuple[str, str]:
    """(encoder, what was chosen and why) for --encoder auto|x264|nvenc; ValueError names a choice that
    cannot work here. auto takes NVENC where there is a CUDA GPU whose encoder opens, else x264."""
    if preset not in NVENC_PRESETS:
        raise ValueError(f"--preset {preset}: not a preset; use one of {', '.join(X264_PRESETS)} "
                         f"(or p1 .. p7 with --encoder nvenc)")
    why = " (no CUDA GPU)" if choice == "auto" else ""
    if choice == "nvenc" or (choice == "auto" and cuda):
        problem = encoder_problem("h264_nvenc", width, height, crf, preset)
        if problem is None:
            return "h264_nvenc", "h264_nvenc (the GPU's hardware encoder)"
        if choice == "nvenc":
            raise ValueError(f"--encoder nvenc: the GPU's hardware encoder cannot be used here ({problem}); "
                             f"{NVENC_NEEDS}; use --encoder x264")
        why = f" (NVENC cannot be used here: {problem}; {NVENC_NEEDS})"
    if preset not in X264_PRESETS:
        raise ValueError(f"--preset {preset}: an NVENC preset, and the film is encoded with x264{why}; "
                         f"x264's presets are {', '.join(X264_PRESETS)}")
    problem = encoder_problem("libx264", width, height, crf, preset)
    if problem is not None:
        raise ValueError(f"libx264 cannot be opened ({problem})")
    return "libx264", "libx264" + why


def share_cores_with_encoder(engine: Engine) -> int:
    """On a CPU, give the generator and the detail stage half the cores (torch's and OpenCV's thread
    pools alike) and leave the rest to x264's own threads: pools each sized for the whole machine
    preempt each other (on 2 cores, one torch thread renders a 1080p film 1.2x faster than two,
    benchmarks/render_speed.py). Returns the torch thread count now in force."""
    import torch
    if engine.device.type == "cpu":
        half = max(1, (os.cpu_count() or 2) // 2)
        torch.set_num_threads(half)
        cv2.setNumThreads(half)
    return torch.get_num_threads()


def frame_states(settings, job: RenderJob, frames: range | None = None) -> Iterator[tuple[int, FrameState]]:
    """(frame index, state) for the job's frames (or the given ones). Without --from/--to the
    course runs at the live clock's pace from its start, exactly as an unattended room would see it.

    The weight damage is sampled once per generation block (BLOCK frames: 0.27 s at 30 fps) — each
    frame carries the weight-symptom intensities of its block's first frame — while everything
    else (walk, activations, latents, output, sound) follows every frame. A block then needs one
    recompute of the damaged weights (~25 ms on a small CPU) instead of one per frame when the
    course is compressed into a film, and the live piece, whose weights follow the course through
    a background recompute, changes them no more finely. Still a pure function of the frame index."""
    piece = Piece(settings)
    seed = piece.course_state.seed if job.seed is None else int(job.seed)
    duration = piece.course.duration_s
    last = max(1, job.total_frames - 1)

    def at(i: int) -> FrameState:
        t = i / job.fps
        if job.start is None:
            elapsed = t
        else:
            elapsed = (job.start + (job.end - job.start) * i / last) * duration
        piece.t = piece.walk_phase = t
        piece.set_course(CourseState(elapsed_s=elapsed, seed=seed))
        return piece.frame_state()

    block, first = None, None
    for i in (job.frame_range() if frames is None else frames):
        state = at(i)
        if i // BLOCK != block:
            block, first = i // BLOCK, (state if i % BLOCK == 0 else at(i - i % BLOCK))
        yield i, with_weights_of(state, first)


def with_weights_of(state: FrameState, first: FrameState) -> FrameState:
    """`state` with the weight-symptom intensities of `first` (its block's first frame)."""
    if state is first:
        return state
    own = {k: v for k, v in state.intensities.items() if k not in WEIGHT_ORDER}
    return state.with_(intensities={**own, **{k: v for k, v in first.intensities.items() if k in WEIGHT_ORDER}})


def tail_state(settings, job: RenderJob) -> FrameState | None:
    """The state of the frame after the last one the job generates (its block range), where the
    sound of that frame glides to; None at the end of the film (its last frame's sound holds)."""
    stop = job.block_range().stop
    if stop >= job.total_frames:
        return None
    return next(frame_states(settings, job, range(stop, stop + 1)))[1]


def replay_states(path: Path) -> Iterator[tuple[int, FrameState]]:
    with open(path, encoding="utf-8") as f:
        n = 0
        try:
            for n, line in enumerate(f, 1):
                if line.strip():
                    d = json.loads(line)
                    yield int(d["frame"]), FrameState.from_dict(d)
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as e:   # UnicodeDecodeError too
            raise ValueError(f"{path} line {n + 1 if isinstance(e, UnicodeDecodeError) else n}: not a state "
                             f"line written by --state-log ({e})") from None


def partial_path(out: Path) -> Path:
    return out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")


class VideoSink:
    """Frames (and their sound) -> H.264 (yuv420p) + AAC MP4 into a partial file renamed at the end;
    without a sample rate the film is silent. Three threads share the work: the caller's makes the
    frames and hands them over without a copy; one thread runs x264 and muxes every packet; a
    third encodes the sound (AAC costs a tenth of x264's time at 1080p), so neither the
    picture's making nor its encoding waits for the sound's."""

    form = "i420"               # what it takes best: YUV 4:2:0 frames [H * 3/2, W]; RGB [H, W, 3] also works

    def __init__(self, out: Path, width: int, height: int, fps: float, crf: int, preset: str,
                 encoder: str = "libx264", queue_size: int = 8, sample_rate: int | None = None):
        self.out, self.tmp = out, partial_path(out)
        # the movie timescale is the sample rate, so the edit list that hides AAC's priming
        # samples is exact (at the default 1/1000 s a segment's sound lands 32 samples early)
        options = {"movie_timescale": str(sample_rate)} if sample_rate else {}
        self.container = av.open(str(self.tmp), mode="w", options=options)
        rate = _fraction(fps)
        self.stream = self.container.add_stream(encoder, rate=rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.time_base = 1 / rate
        self.stream.options = encoder_options(encoder, crf, preset)
        self.audio = _add_aac(self.container, sample_rate) if sample_rate else None
        # the codecs opened and the header written before any thread starts: then the AAC encoder is
        # used by the sound thread alone, the container by the encoder's alone
        try:
            self.container.start_encoding()
        except BaseException:           # an encoder that cannot open: nothing left behind
            try:
                self.container.close()
            except Exception:
                pass
            self.tmp.unlink(missing_ok=True)
            raise
        self.error: BaseException | None = None
        self.count = 0
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)          # frames and packets to mux
        self.thread = threading.Thread(target=self._serve, name="lapses-encoder", daemon=True,
                                       args=(self.queue, self._mux, lambda: self.container.mux(self.stream.encode())))
        self.sound_queue: queue.Queue | None = None
        if self.audio is not None:
            self.sound_queue = queue.Queue(maxsize=queue_size)
            self.sound_thread = threading.Thread(
                target=self._serve, name="lapses-film-sound", daemon=True,
                args=(self.sound_queue, lambda frame: self.queue.put(("packets", self.audio.encode(frame))),
                      lambda: self.queue.put(("packets", self.audio.encode()))))      # the sound's last packets
            self.sound_thread.start()
        self.thread.start()

    def _serve(self, q: queue.Queue, take, finish) -> None:
        """A thread's loop: take(item) for each item put on q until the end marker (None), then
        finish(). An error is kept for the render thread, which stops; the queue is then still
        emptied up to the end marker, so no writer waits on it full."""
        ended = False           # the end marker taken: after a late error there is nothing left to drain
        try:
            while (item := q.get()) is not None:
                take(item)
            ended = True
            finish()
        except BaseException as e:
            self.error = self.error or e
            while not ended and q.get() is not None:
                pass

    def _mux(self, item: tuple) -> None:
        """A frame encoded and muxed, or the sound thread's packets muxed."""
        kind, data = item
        if kind == "video":
            self.count += 1
            data = self.stream.encode(data)
        self.container.mux(data)

    def write(self, i: int, frame: np.ndarray) -> None:
        if self.error:
            raise self.error
        # an RGB frame is converted here, in the caller's thread (the encoder's sets the film's pace):
        # BT.601 limited range, as swscale's default rgb24 -> yuv420p, at a sixth of its cost; an
        # I420 one (Output.i420) goes in as it is, not even copied (x264 copies what it reads)
        yuv = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
        video = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(yuv), format="yuv420p")
        video.pts = i            # the global frame index: segments join without retiming
        self.queue.put(("video", video))

    def write_audio(self, start_sample: int, samples: np.ndarray) -> None:
        """Sound float32 [n, 2] beginning at this sample of the film (0 at frame 0)."""
        if self.error:
            raise self.error
        if self.audio is None:
            return
        self.sound_queue.put(_audio_frame(samples, start_sample, self.audio.rate))

    def close(self, ok: bool) -> None:
        if self.sound_queue is not None:
            self.sound_queue.put(None)
            self.sound_thread.join()            # its last packets are queued before the end marker
        self.queue.put(None)
        self.thread.join()
        try:
            self.container.close()
        except Exception as e:      # after an encoder error the muxer may refuse too: report the first
            self.error = self.error or e
        if ok and self.error is None:
            os.replace(self.tmp, self.out)
        else:
            self.tmp.unlink(missing_ok=True)
            if self.error is not None:
                raise self.error


class FramesSink:
    """Frames -> numbered PNGs in a folder (frame index in the name, so segments can share it)."""

    form = "rgb"

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, i: int, frame: np.ndarray) -> None:
        cv2.imwrite(str(self.folder / f"frame_{i:07d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self, ok: bool) -> None:
        pass


def _fraction(fps: float):
    return frame_rate(fps)


def _add_aac(container, sample_rate: int):
    stream = container.add_stream("aac", rate=sample_rate)
    stream.layout = "stereo"
    stream.bit_rate = AUDIO_KBPS * 1000
    return stream


def _audio_frame(samples: np.ndarray, start_sample: int, sample_rate: int) -> av.AudioFrame:
    planar = np.ascontiguousarray(np.asarray(samples, np.float32).T)           # [2, n]
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
    frame.sample_rate = sample_rate
    frame.pts = start_sample     # the global sample index, like the video's frame index
    frame.time_base = Fraction(1, sample_rate)
    return frame


def generated_frames(engine: Engine, states, form: str = "rgb") -> Iterator[tuple[int, FrameState, np.ndarray]]:
    """(i, state, frame) in order: frames of one block (i // BLOCK) that share their weight damage
    are generated together; in `form` (rgb, i420)."""
    group: list[tuple[int, FrameState]] = []

    def flush():            # each frame made as it is taken: the encoder has the first sooner
        batch = list(group)
        group.clear()
        yield from ((i, s, f) for (i, s), f in zip(batch, engine.render_batch([s for _, s in batch], form, lazy=True)))
    for i, state in states:
        if group and (i // BLOCK != group[-1][0] // BLOCK or i != group[-1][0] + 1
                      or not engine.weights.same_weights(group[0][1].intensities, state.intensities,
                                                        group[0][1].seed, state.seed)):
            yield from flush()
        group.append((i, state))
    if group:
        yield from flush()


def render(engine: Engine, states, sink, state_log: Path | None = None, progress=None,
           sound: FilmSound | None = None, tail: FrameState | None = None, keep: range | None = None) -> int:
    """Render states into a sink; returns the number of frames. Partial output is removed on error.

    Generation is batched across frames (see BLOCK); `keep` says which of the states' frames go
    into the sink when `states` covers more (RenderJob.block_range around a segment's frames).
    With `sound`, the kept frames' sound goes to `sink.write_audio`, made from all the states in
    the same groups as the whole film makes it; `tail` is the state after the last one (in the
    next segment), so the last frame's sound glides where the whole film's does."""
    log_f = open(state_log, "w", encoding="utf-8") if state_log else None
    form = getattr(sink, "form", "rgb")      # the frames the sink takes (and the sound's cues read)
    ok, n = False, 0
    if sound is not None:
        sound.keep_only(keep)
    try:
        for i, state, frame in generated_frames(engine, states, form):
            if sound is not None:
                for start, samples in sound.add(i, state, cues_for(engine, state, frame)):
                    sink.write_audio(start, samples)
            if keep is not None and i not in keep:
                continue
            sink.write(i, frame)
            if log_f:
                log_f.write(json.dumps({"frame": i, **state.to_dict()}) + "\n")
            n += 1
            if progress is not None:
                progress.update(1)
        if sound is not None:
            # the tail's frame in the sink's form, as the whole film makes it: the cues are the same
            tail_cues = None if tail is None else cues_for(engine, tail, engine.render_batch([tail], form)[0])
            for start, samples in sound.finish(tail, tail_cues):
                sink.write_audio(start, samples)
        ok = True
    finally:
        if log_f:
            log_f.close()
        sink.close(ok)
    return n


def concat(parts: list[Path], out: Path) -> int:
    """Join rendered segments into one MP4; returns the number of video packets.

    The video packets are copied, not re-encoded. The sound is decoded, each segment's cut to its
    own samples, and encoded once: AAC packets of separately encoded segments cannot simply follow
    each other (each segment begins with its encoder's priming and its transform overlaps the
    next), and copying them would leave a small glitch at every join."""
    tmp = partial_path(out)
    ok, packets = False, 0
    try:
        with av.open(str(parts[0])) as first:
            template = first.streams.video[0]
            shape = _video_signature(template)
            sample_rate = first.streams.audio[0].rate if first.streams.audio else None
            options = {"movie_timescale": str(sample_rate)} if sample_rate else {}
            dst = av.open(str(tmp), "w", options=options)
            stream = dst.add_stream_from_template(template)
        with dst:
            joined = _AudioJoin(dst, sample_rate) if sample_rate else None
            for part in parts:
                with av.open(str(part)) as src:
                    vs = src.streams.video[0]
                    if _video_signature(vs) != shape:
                        raise ValueError(f"{part}: its size, frame rate or encoding differs from {parts[0]}'s; "
                                         f"segments must come from one render command, with the same "
                                         f"--encoder (x264 on every machine, say)")
                    audio = src.streams.audio[0] if src.streams.audio else None
                    if (audio.rate if audio else None) != sample_rate:
                        raise ValueError(f"{part}: its sound differs from {parts[0]}'s (one has none, or another "
                                         f"sample rate); segments must come from one render command")
                    first_frame, frames = _frame_span(part)
                    fps = frame_rate(vs.average_rate)
                    span = ((first_frame * sample_rate * fps.denominator) // fps.numerator,
                            ((first_frame + frames) * sample_rate * fps.denominator) // fps.numerator) \
                        if audio else None
                    for packet in src.demux(*([vs, audio] if audio else [vs])):
                        if packet.dts is None:
                            continue
                        if packet.stream.type == "audio":
                            for frame in packet.decode():
                                joined.add(frame, *span)
                            continue
                        packet.stream = stream      # timestamps are global frame indices already
                        dst.mux(packet)
                        packets += 1
                    if audio is not None:
                        joined.end_part(*span)
            if joined is not None:
                joined.close()
        ok = True
    finally:
        if ok:
            os.replace(tmp, out)
        else:
            tmp.unlink(missing_ok=True)
    return packets


def _video_signature(stream) -> tuple:
    """What segments must share for their packets to be copied into one film: size, frame rate, codec
    and its parameter sets (another preset or encoder writes others)."""
    cc = stream.codec_context
    return cc.width, cc.height, stream.average_rate, cc.name, bytes(cc.extradata or b"")


def _frame_span(path: Path) -> tuple[int, int]:
    """(first frame index, number of frames) of a rendered film, from its video packets."""
    with av.open(str(path)) as src:
        vs = src.streams.video[0]
        rate = frame_rate(vs.average_rate)
        pts = [p.pts for p in src.demux(vs) if p.dts is not None and p.pts is not None]
    if not pts:
        return 0, 0
    return round(min(pts) * vs.time_base * rate), len(pts)


class _AudioJoin:
    """Decoded sound of consecutive segments -> one AAC track, each segment cut to its samples."""

    def __init__(self, container, sample_rate: int):
        self.container, self.sample_rate = container, sample_rate
        self.stream = _add_aac(container, sample_rate)
        self.next: int | None = None            # the next sample of the film to encode

    def _encode(self, samples: np.ndarray) -> None:      # [n, 2]
        if len(samples):
            for packet in self.stream.encode(_audio_frame(samples, self.next, self.sample_rate)):
                self.container.mux(packet)
            self.next += len(samples)

    def add(self, frame: av.AudioFrame, lo: int, hi: int) -> None:
        if self.next is None:
            self.next = lo
        data = frame.to_ndarray().astype(np.float32)                 # [channels, n] (planar)
        data = np.repeat(data, 2, axis=0) if data.shape[0] == 1 else data[:2]
        start = round(frame.pts * frame.time_base * self.sample_rate)
        keep_from, keep_to = max(lo, self.next, start), min(hi, start + data.shape[1])
        if keep_to <= keep_from:
            return
        if keep_from > self.next:                                     # a hole: fill it with silence
            self._encode(np.zeros((keep_from - self.next, 2), np.float32))
        self._encode(np.ascontiguousarray(data[:, keep_from - start:keep_to - start].T))

    def end_part(self, lo: int, hi: int) -> None:
        if self.next is None:
            self.next = lo
        if self.next < hi:
            self._encode(np.zeros((hi - self.next, 2), np.float32))

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
