"""Offline rendering: the piece as a film, frame for frame as the room would have seen it.

Time comes from the frame index (t = i / fps). Each frame's state is a pure function of i, so a
render can be split into segments on several machines and joined (`concat`) without re-encoding.
Generation runs in this thread while a second thread converts and encodes (PyAV releases the GIL
while x264 works), so on a CPU machine the encoder, not the network, sets the pace. The target
file appears only when it is complete: a render that is interrupted leaves nothing behind.
"""
from __future__ import annotations

import json
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from .course import CourseState
from .engine import Engine
from .piece import Piece
from .state import FrameState


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
        return max(1, round(self.seconds * self.fps))

    def frame_range(self) -> range:
        i, n = self.segment
        total = self.total_frames
        return range(i * total // n, (i + 1) * total // n)


def frame_states(settings, job: RenderJob) -> Iterator[tuple[int, FrameState]]:
    """(frame index, state) for the job's frames. Without --from/--to the course runs at the
    live clock's pace from its start, exactly as an unattended room would see it."""
    piece = Piece(settings)
    seed = piece.course_state.seed if job.seed is None else int(job.seed)
    duration = piece.course.duration_s
    last = max(1, job.total_frames - 1)
    for i in job.frame_range():
        t = i / job.fps
        if job.start is None:
            elapsed = t
        else:
            elapsed = (job.start + (job.end - job.start) * i / last) * duration
        piece.t = piece.walk_phase = t
        piece.course_state = CourseState(elapsed_s=elapsed, seed=seed)
        piece._sample = None
        yield i, piece.frame_state()


def replay_states(path: Path) -> Iterator[tuple[int, FrameState]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    d = json.loads(line)
                    yield int(d["frame"]), FrameState.from_dict(d)
                except (ValueError, KeyError, TypeError) as e:
                    raise ValueError(f"{path} line {n}: not a state line written by --state-log ({e})") from None


def partial_path(out: Path) -> Path:
    return out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")


class VideoSink:
    """Frames -> H.264 MP4 (yuv420p) on a background thread, into a partial file renamed at the end."""

    def __init__(self, out: Path, width: int, height: int, fps: float, crf: int, preset: str,
                 encoder: str = "libx264", queue_size: int = 8):
        self.out, self.tmp = out, partial_path(out)
        self.container = av.open(str(self.tmp), mode="w")
        rate = _fraction(fps)
        self.stream = self.container.add_stream(encoder, rate=rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.time_base = 1 / rate
        if encoder == "libx264":
            self.stream.options = {"crf": str(crf), "preset": preset}
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.error: BaseException | None = None
        self.count = 0
        self.thread = threading.Thread(target=self._work, name="lapses-encoder", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                i, rgb = item
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = i            # the global frame index: segments join without retiming
                self.count += 1
                for packet in self.stream.encode(frame):
                    self.container.mux(packet)
            for packet in self.stream.encode():
                self.container.mux(packet)
        except BaseException as e:  # reported to the render thread, which stops
            self.error = e
            while self.queue.get() is not None:
                pass

    def write(self, i: int, frame: np.ndarray) -> None:
        if self.error:
            raise self.error
        self.queue.put((i, frame))

    def close(self, ok: bool) -> None:
        self.queue.put(None)
        self.thread.join()
        self.container.close()
        if ok and self.error is None:
            os.replace(self.tmp, self.out)
        else:
            self.tmp.unlink(missing_ok=True)
            if self.error is not None:
                raise self.error


class FramesSink:
    """Frames -> numbered PNGs in a folder (frame index in the name, so segments can share it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, i: int, frame: np.ndarray) -> None:
        cv2.imwrite(str(self.folder / f"frame_{i:07d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self, ok: bool) -> None:
        pass


def _fraction(fps: float):
    from fractions import Fraction
    return Fraction(fps).limit_denominator(1001)


def render(engine: Engine, states, sink, state_log: Path | None = None, progress=None) -> int:
    """Render states into a sink; returns the number of frames. Partial output is removed on error."""
    log_f = open(state_log, "w", encoding="utf-8") if state_log else None
    ok, n = False, 0
    try:
        for i, state in states:
            frame = engine.render(state, sync=True)
            sink.write(i, frame)
            if log_f:
                log_f.write(json.dumps({"frame": i, **state.to_dict()}) + "\n")
            n += 1
            if progress is not None:
                progress.update(1)
        ok = True
    finally:
        if log_f:
            log_f.close()
        sink.close(ok)
    return n


def concat(parts: list[Path], out: Path) -> int:
    """Join rendered segments into one MP4 without re-encoding; returns the number of packets."""
    tmp = partial_path(out)
    ok, packets = False, 0
    try:
        with av.open(str(tmp), "w") as dst:
            first = av.open(str(parts[0]))
            template = first.streams.video[0]
            stream = dst.add_stream_from_template(template)
            shape = (template.codec_context.width, template.codec_context.height, template.average_rate)
            first.close()
            for part in parts:
                with av.open(str(part)) as src:
                    vs = src.streams.video[0]
                    if (vs.codec_context.width, vs.codec_context.height, vs.average_rate) != shape:
                        raise ValueError(f"{part}: size or frame rate differs from {parts[0]}; "
                                         f"segments must come from one render command")
                    for packet in src.demux(vs):     # timestamps are global frame indices already
                        if packet.dts is None:
                            continue
                        packet.stream = stream
                        dst.mux(packet)
                        packets += 1
        ok = True
    finally:
        if ok:
            os.replace(tmp, out)
        else:
            tmp.unlink(missing_ok=True)
    return packets
