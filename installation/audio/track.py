"""A film's soundtrack, frame by frame; WAV files; and the figures that say how the sound decays.

The sound of frame i covers samples [s(i), s(i+1)) with s(i) = floor(i x sample_rate / fps),
gliding from frame i's state to frame i+1's. So the soundtrack lasts exactly as long as the
picture, each frame's sound lies under its picture, and because the synthesis is pure and made
in the same groups of frames (GROUP) by whoever makes it, a segment that begins at frame j makes
the same samples as the whole film does from j on. A segment is fed the states of its whole
groups; for the last one it needs the state of the frame after it (in the next segment): the
renderer hands that over as the `tail`. The film's very last frame holds its own state.

A segment's sound is padded with PAD_SAMPLES before its first frame (unless it starts the film)
and after its last (unless it ends it), continuing its first and last states. AAC smears a sound
that starts or stops abruptly over its first and last few milliseconds; the padding takes the
smear, and `concat` cuts every segment back to its own samples, so joins are seamless.
"""
from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..state import FrameState
from .synth import Cues, Soundscape


def frame_rate(fps: float | Fraction) -> Fraction:
    """The exact frame rate a film uses for fps: the NTSC rates as they are (23.976 -> 24000/1001,
    29.97 -> 30000/1001, 59.94 -> 60000/1001), others as written (7.5 -> 15/2)."""
    for n in NTSC_BASES:
        if abs(float(fps) - n * 1000 / 1001) < 0.005:
            return Fraction(n * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


NTSC_BASES = (24, 30, 48, 60, 120)


PAD_SAMPLES = 2048                  # two AAC frames
GROUP = 8                           # frames whose sound is made in one call (Soundscape.frames): the
                                    # frames [8g, 8g + 8) of the film, whichever segment renders them


class FilmSound:
    """Frames' states in, (first sample, float32 [n, 2]) blocks out, a group of frames behind.

    The sound of the frames [8g, 8g + 8) is made in one call, and the same call whether the whole
    film or a segment makes it: a segment is fed the states of its whole groups (the renderer's
    generation blocks are the same frames) and keeps only its own samples (`keep_only`). The
    state of the frame after the last one fed, if there is one, comes to `finish` as the tail."""

    def __init__(self, scape: Soundscape, fps: float | Fraction, keep: range | None = None):
        self.scape = scape
        self.fps = frame_rate(fps)
        self.sample_rate = scape.sample_rate
        self._group: list[tuple[int, FrameState, Cues | None]] = []
        self._started = False                      # the kept frames' sound has begun
        self._after: tuple[FrameState, Cues | None] | None = None   # the frame after the kept ones
        self._last: int | None = None             # the last frame fed
        self.keep_only(keep)

    def keep_only(self, keep: range | None) -> None:
        """Give out only the sound of these frames (and the padding around them); None: all fed."""
        if self._last is not None:
            raise RuntimeError("FilmSound.keep_only: frames were fed already")
        self.keep = keep

    def sample_of(self, frame: int) -> int:
        """First sample of a frame's sound: floor(frame x sample_rate / fps), exactly."""
        return (int(frame) * self.sample_rate * self.fps.denominator) // self.fps.numerator

    def _kept(self, i: int) -> bool:
        return i in self.keep if self.keep is not None else True

    def add(self, i: int, state: FrameState, cues: Cues | None = None) -> list[tuple[int, np.ndarray]]:
        """Take frame i; returns the sound of the group before it, once that group's end is known."""
        i = int(i)
        out = []
        group = self._group
        if group and (i != group[-1][0] + 1 or i // GROUP != group[0][0] // GROUP):
            out = self._make((state, cues) if i == group[-1][0] + 1 else None)
        if self.keep is not None and i == self.keep.stop:
            self._after = (state, cues)
        self._group.append((i, state, cues))
        self._last = i
        return out

    def finish(self, tail: FrameState | None = None, tail_cues: Cues | None = None) -> list[tuple[int, np.ndarray]]:
        """The last group's sound: toward the tail (the state of the frame after the last one fed)
        or, at the film's end, held; then the padding after the kept frames, unless the film ends there."""
        if not self._group:
            return []
        end = None if tail is None else (tail, tail_cues)
        last = self._last
        out = self._make(end)
        stop = self.keep.stop if self.keep is not None else last + 1
        if self._after is None and end is not None and stop == last + 1:
            self._after = end
        if self._after is not None and stop <= last + 1:
            at = self.sample_of(stop)
            state, cues = self._after
            out.append((at, self.scape.block(at, PAD_SAMPLES, state, state, cues, cues)))
        self._after, self._last = None, None
        return out

    def _make(self, end: tuple[FrameState, Cues | None] | None) -> list[tuple[int, np.ndarray]]:
        """The group's sound, gliding into `end` (the next frame's state and cues; None: hold), cut
        to the kept frames, with the padding before them if they begin here and not at the film's start."""
        group, self._group = self._group, []
        kept = [i for i, _, _ in group if self._kept(i)]
        if not kept:
            return []
        out = []
        i0 = group[0][0]
        if not self._started:
            self._started = True
            if kept[0] > 0:                            # a segment: padding before its first sample
                _, state, cues = group[kept[0] - i0]
                first = self.sample_of(kept[0])
                start = max(0, first - PAD_SAMPLES)
                out.append((start, self.scape.block(start, first - start, state, state, cues, cues)))
        bounds = [self.sample_of(i) for i in range(i0, group[-1][0] + 2)]
        states = [s for _, s, _ in group] + [end[0] if end else group[-1][1]]
        cues = [c for _, _, c in group] + [end[1] if end else group[-1][2]]
        samples = self.scape.frames(bounds, states, cues)
        lo, hi = bounds[kept[0] - i0], bounds[kept[-1] + 1 - i0]
        out.append((lo, samples[lo - bounds[0]:hi - bounds[0]]))
        return out


class StageMeters:
    """The film's sound measured per stage of the course: each stage's first and last progress
    and its Meter. The sound comes a group of frames behind the frames, so each block is split
    where its frames' stage changes: a stage gets exactly the samples under its own frames."""

    def __init__(self, sound: FilmSound):
        self.sound = sound
        self.rows: dict[str, list] = {}                 # name -> [first progress, last progress, Meter]
        self._stage: dict[int, str] = {}                # frame -> stage, for frames not yet heard

    def frame(self, i: int, stage: str, progress: float) -> None:
        row = self.rows.setdefault(stage, [progress, progress, Meter(self.sound.sample_rate)])
        row[1] = progress
        self._stage[int(i)] = stage

    def _frame_of(self, sample: int) -> int:
        fps, rate = self.sound.fps, self.sound.sample_rate
        i = (sample * fps.numerator) // (rate * fps.denominator)
        while self.sound.sample_of(i + 1) <= sample:
            i += 1
        while i > 0 and self.sound.sample_of(i) > sample:
            i -= 1
        return i

    def add(self, start: int, samples: np.ndarray) -> None:
        pos, end = start, start + len(samples)
        while pos < end:
            i = self._frame_of(pos)
            known = [k for k in self._stage if k <= i]
            stage = self._stage[max(known)] if known else self._stage[min(self._stage)]
            j = i + 1
            while self._stage.get(j, stage) == stage and self.sound.sample_of(j) < end:
                j += 1
            stop = min(end, self.sound.sample_of(j))
            self.rows[stage][2].add(samples[pos - start:stop - start])
            pos = stop
        heard = self._frame_of(max(start, end - 1))
        for k in [k for k in self._stage if k < heard]:
            del self._stage[k]                          # heard: an hour's film keeps a group's worth


class WavWriter:
    """16-bit stereo PCM into a partial file, renamed over `out` only when closed with ok=True."""

    def __init__(self, out: Path, sample_rate: int):
        self.out = Path(out)
        self.tmp = self.out.with_name(f".{self.out.stem}.partial-{os.getpid()}{self.out.suffix}")
        self.wav = wave.open(str(self.tmp), "wb")
        self.wav.setnchannels(2)
        self.wav.setsampwidth(2)
        self.wav.setframerate(int(sample_rate))
        self.samples = 0

    def write(self, samples: np.ndarray) -> None:
        pcm = np.clip(np.round(np.asarray(samples, np.float64) * 32767.0), -32767, 32767).astype("<i2")
        self.wav.writeframes(np.ascontiguousarray(pcm).tobytes())
        self.samples += len(pcm)

    def close(self, ok: bool) -> None:
        self.wav.close()
        if ok:
            os.replace(self.tmp, self.out)
        else:
            self.tmp.unlink(missing_ok=True)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit WAV as float [n, channels] in [-1, 1], and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit WAV files are read here")
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32767.0
        return data.reshape(-1, w.getnchannels()), w.getframerate()


@dataclass(frozen=True)
class Figures:
    rms_db: float        # loudness, dB below full scale (-inf for silence)
    peak_db: float
    flatness: float      # spectral flatness, 0 (pure tones) .. 1 (white noise)
    silent: float        # share of 50 ms windows quieter than -60 dBFS (the lapses)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def measure(samples: np.ndarray, sample_rate: int) -> Figures:
    """How loud, how noisy and how often silent a stretch of sound is."""
    meter = Meter(sample_rate)
    meter.add(samples)
    return meter.figures()


SILENT_RMS = 1e-3                   # a 50 ms window quieter than this (-60 dBFS) is silent


class Meter:
    """`measure`'s figures of a sound fed in blocks, in memory that does not grow with its length
    (an hour's film: its sums, not its 1.3 GB of samples). Fed the blocks of one stretch, it gives
    the figures `measure` gives for the stretch joined."""

    SPECTRUM = 4096                 # Hann window of the spectral flatness (half overlap)

    def __init__(self, sample_rate: int):
        self.sample_rate = int(sample_rate)
        self.window = max(1, self.sample_rate // 20)    # 50 ms, for the share of silence
        self.samples = 0
        self._square_sum, self._values, self._peak = 0.0, 0, 0.0
        self._quiet, self._windows = 0, 0
        self._silence_rest = np.zeros(0)                # mono samples of an unfinished 50 ms window
        self._spectrum_rest = np.zeros(0)               # mono samples not yet in a whole spectrum frame
        self._power, self._frames = 0.0, 0
        self._hann = np.hanning(self.SPECTRUM)

    def add(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, np.float64)
        if not x.size:
            return
        mono = x.mean(axis=1) if x.ndim == 2 else x
        self.samples += len(mono)
        self._square_sum += float(np.sum(x * x))
        self._values += x.size
        self._peak = max(self._peak, float(np.abs(x).max()))
        rest = np.concatenate([self._silence_rest, mono])
        count = len(rest) // self.window
        if count:
            rms = np.sqrt(np.mean(rest[:count * self.window].reshape(count, self.window) ** 2, axis=1))
            self._quiet += int(np.sum(rms < SILENT_RMS))
            self._windows += count
        self._silence_rest = rest[count * self.window:]
        rest = np.concatenate([self._spectrum_rest, mono])
        size, hop = self.SPECTRUM, self.SPECTRUM // 2
        frames = 1 + (len(rest) - size) // hop if len(rest) >= size else 0
        if frames:
            idx = np.arange(size)[None, :] + hop * np.arange(frames)[:, None]
            self._power = self._power + np.sum(np.abs(np.fft.rfft(rest[idx] * self._hann, axis=1)) ** 2, axis=0)
            self._frames += frames
            rest = rest[frames * hop:]
        self._spectrum_rest = rest

    def figures(self) -> Figures:
        rms = math.sqrt(self._square_sum / self._values) if self._values else 0.0
        quiet, windows = self._quiet, self._windows
        if not windows and self._silence_rest.size:     # shorter than one window: judge what there is
            quiet, windows = int(math.sqrt(float(np.mean(self._silence_rest ** 2))) < SILENT_RMS), 1
        if self._frames:
            flatness = _flatness(self._power / self._frames, self.SPECTRUM, self.sample_rate)
        else:                       # shorter than one window: all of it is still here
            flatness = spectral_flatness(self._spectrum_rest, self.sample_rate, self.SPECTRUM)
        return Figures(_db(rms), _db(self._peak), flatness, quiet / windows if windows else 0.0)


def spectral_flatness(mono: np.ndarray, sample_rate: int, size: int = 4096) -> float:
    """Geometric over arithmetic mean of the averaged power spectrum (Hann windows, half overlap),
    40 Hz .. 16 kHz; 0.0 for silence."""
    if len(mono) < size:
        size = 1 << max(6, int(math.log2(max(len(mono), 64))))
        mono = np.pad(mono, (0, max(0, size - len(mono))))
    hop = size // 2
    frames = 1 + (len(mono) - size) // hop
    idx = np.arange(size)[None, :] + hop * np.arange(frames)[:, None]
    power = np.mean(np.abs(np.fft.rfft(mono[idx] * np.hanning(size), axis=1)) ** 2, axis=0)
    return _flatness(power, size, sample_rate)


def _flatness(power: np.ndarray, size: int, sample_rate: int) -> float:
    f = np.fft.rfftfreq(size, 1.0 / sample_rate)
    band = power[(f >= 40.0) & (f <= min(16000.0, 0.45 * sample_rate))]
    if band.size == 0 or band.mean() <= 1e-20:
        return 0.0
    return float(np.exp(np.mean(np.log(band + 1e-20))) / band.mean())
