"""The soundscape: one pure function from (sample positions, two states, two cues) to stereo samples.

Why pure: the live piece, a film and each segment of a split film must sound the same for the same
states. So nothing here keeps state between blocks. Every oscillator's phase and every envelope is
a function of the *absolute* sample position; every parameter is a straight line across the block
from the state at its start to the state at its end. Consecutive blocks share the state at their
join, so every parameter is continuous there and nothing clicks; a film's frame i is the block
[s(i), s(i+1)) from frame i's state to frame i+1's, whether or not the frames before it were made.

The layers (slow, soft and consonant, to be lived with for an hour):
  drone   the root and its fifth, low, each breathing on its own slow cycle;
  chords  four voices, one seventh chord of the scale per memory, crossfading (equal power) as the
          walk moves from memory to memory; their timbre opens with the picture's brightness and
          their stereo image widens with its colour;
  motifs  each memory has a short phrase of soft bell tones that returns every `motif_every_s`
          while the walk is near that memory, with echoes (`space`) for room;
  hiss    tape hiss, only when a symptom brings it.

How it forgets (which symptom drives what is `sound.follow`; the defaults):
  voices  neuron_death    chord voices die at seeded onsets, then the drone's fifth; the root never
  drift   weight_noise    each voice's pitch wanders on its own slow curve: the chord detunes
  crush   precision_loss  samples are held (the rate falls to 4 kHz) and quantised (down to 4 bits)
  motif   forgetting      a memory's phrase loses its notes one by one, each at its own onset
  hiss    static          hiss rises
  dull    fading          the timbre darkens
  thin    synapse_loss    every voice grows quieter (to -7 dB)
  silence lapses          the picture's own blackout timing (symptoms.lapses.darkness), to the frame

Damage follows the project's rule: each voice and note has a seeded onset and is gone while the
intensity is past it (over a narrow fade, so a crossing is a fade, never a click); lowering the
intensity brings back exactly what was there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..settings import SCALES
from ..state import FrameState
from ..symptoms.base import stable_seed
from ..symptoms.lapses import darkness

__all__ = ["Cues", "Soundscape"]

# levels of the layers at full setting, linear amplitude before the master level; chosen so the
# sum of everything at its loudest stays near 0.8 and the soft limiter (tanh) barely works
DRONE_AMP = (0.3, 0.17)             # root, fifth
PAD_AMP = 0.12                      # each of the four chord voices
MOTIF_AMP = 0.18                    # one phrase note at its peak
HISS_AMP = 0.08                     # hiss RMS at intensity 1 (it grows with its square)
THIN_DEPTH = 0.55                   # share of the tonal layers' amplitude lost at thin intensity 1

CHORD_DEGREES = (0, 5, 3, 2, 6, 4, 1)   # chord roots as scale degrees, most settled first (i VI iv III VII v ii)
TIMBRE_R = (0.06, 0.5)              # harmonic roll-off: a sine .. a soft reed (see _tones)
CHORUS_CENTS = 4.0                  # each voice sounds twice, detuned down (left) and up (right)
WIDTH = (0.5, 0.9)                  # share of each on its own side: grey (mono) .. vivid picture (wide)
DRIFT_CENTS = 40.0                  # how far a voice's pitch wanders at drift intensity 1
DRIFT_HZ = (0.02, 0.07)             # how fast it wanders
BREATH_S = (17.0, 37.0)             # periods of each voice's slow swell
FADE_WIDTH = 0.06                   # intensity over which a dying voice or note fades out
FIFTH_ONSET = 0.9                   # neuron_death onset of the drone's fifth (chord voices go first)

NOTE_ATTACK_S = 0.05                # a phrase note: soft strike,
NOTE_DECAY_S = 1.3                  # exponential ring,
NOTE_S = 6.0                        # gone after this long,
NOTE_TAPER_S = 1.5                  # reaching zero smoothly over the last stretch
ECHO_S = 0.43                       # echo spacing; echo k has gain space**k and alternates sides
ECHOES = 3

CRUSH_RATE_HZ = 4000.0              # effective sample rate at crush intensity 1
CRUSH_BITS = 4.0                    # bit depth at crush intensity 1 (16 at 0)
CONTROL_SAMPLES = 64                # spacing of the lapse envelope's control points
SWELL_S = 1.5                       # the sound swells in from sample 0 (of a film, of a live run)

NOISE_LENGTHS = (131071, 65537)     # two looped hiss tables; their sum repeats only after ~50 h at 48 kHz


@dataclass(frozen=True)
class Cues:
    """What the picture tells the sound besides the state (see features.cues_for); plain data.

    A place is a memory (anchor index >= 0), or, for a walk without memories, a negative number
    per stretch of the walk (a chord of its own, no phrase)."""
    brightness: float = 0.5          # mean luma of the picture, 0 black .. 1 white
    colour: float = 0.5              # colourfulness, 0 grey .. 1 vivid
    from_place: int = 0              # where the walk comes from
    to_place: int = 0                # where it goes
    fraction: float = 0.0            # 0 at from_place .. 1 at to_place (eased, as the walk moves)


def _clean(x: float) -> float:
    x = float(x)
    return 0.0 if math.isnan(x) else min(1.0, max(0.0, x))


def _alive(x: np.ndarray, onset: float) -> np.ndarray:
    """1 while intensity x <= onset, fading smoothly to 0 at onset + FADE_WIDTH."""
    s = np.clip((onset + FADE_WIDTH - x) / FADE_WIDTH, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _rng(*parts) -> np.random.Generator:
    return np.random.default_rng(stable_seed("sound", *parts))


@lru_cache(maxsize=4)
def _noise_tables(lengths: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Soft (pink-leaning) noise, RMS 1 each, zero mean; fixed, so hiss is deterministic."""
    out = []
    for n in lengths:
        spectrum = np.fft.rfft(_rng("hiss", n).standard_normal(n))
        f = np.arange(len(spectrum), dtype=np.float64)
        spectrum *= 1.0 / np.sqrt(np.maximum(f, 1.0) / 64.0 + 1.0)     # -3 dB/octave above a low knee
        spectrum[0] = 0.0
        x = np.fft.irfft(spectrum, n)
        out.append((x / np.sqrt(np.mean(x * x))).astype(np.float64))
    return tuple(out)


def _tones(freq: np.ndarray, tau: np.ndarray, warp: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Soft band-limited tones [R, n]: sum_k r^k sin(k theta) in closed form, RMS 1/sqrt(2) for any r.

    theta comes from absolute time (tau, plus each row's pitch-drift warp), so a tone is the same
    whichever block computes it. r = 0 is a sine; at 0.5 harmonics fall 6 dB each: never aliases."""
    cycles = freq[:, None] * (tau[None, :] + warp)                 # float64: exact for weeks of play
    theta = ((2.0 * math.pi) * (cycles - np.floor(cycles))).astype(np.float32)
    r = np.asarray(r, np.float32)
    s, c = np.sin(theta), np.cos(theta)
    return s * np.sqrt(1.0 - r * r) / (1.0 - 2.0 * r * c + r * r)


class _Control:
    """Slow curves of a block (breath, drift, note envelopes) computed at control points on a grid
    of absolute sample positions (every CONTROL_SAMPLES) and drawn straight between. A sample's
    value depends only on its own position, so any split into blocks gives the same samples to
    the bit; between the points it is within ~1e-7 of the curve, at a sixtieth of the cost."""

    def __init__(self, pos: np.ndarray, sample_rate: int):      # pos: absolute (held) positions
        first = int(pos[0]) // CONTROL_SAMPLES
        grid = np.arange(first, int(pos[-1]) // CONTROL_SAMPLES + 2) * CONTROL_SAMPLES
        self.tau = grid / sample_rate                                 # [P] seconds at the points
        self._lo = pos // CONTROL_SAMPLES - first
        self._w = (pos % CONTROL_SAMPLES) / CONTROL_SAMPLES

    def rows(self, values: np.ndarray) -> np.ndarray:
        """values [R, P] at the control points -> [R, n] at every sample."""
        step = np.diff(values, axis=1)                    # b - a per interval, as exact as b - a
        return np.take(values, self._lo, axis=1) + np.take(step, self._lo, axis=1) * self._w


def _midi_hz(note: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


class Soundscape:
    """block(start, n, state_a, state_b, cues_a, cues_b) -> float32 [n, 2] in [-level, level].

    Holds only constants (tables made from the settings and fixed seeds); safe to share, and two
    instances made from the same settings give identical samples."""

    def __init__(self,
                 settings,                    # SoundSettings (settings.sound)
                 n_memories: int,             # anchors of the model: one chord and one phrase each
                 sample_rate: int | None = None):  # samples per second; None = settings.sample_rate
        self.s = settings
        self.n_memories = max(0, int(n_memories))
        self.sample_rate = int(sample_rate or settings.sample_rate)
        self.scale = SCALES[settings.scale]
        self.root = int(settings.root)
        self.max_hold = max(1, round(self.sample_rate / CRUSH_RATE_HZ))
        rng = _rng("voices")
        # chord voices die first, in a seeded order; then the drone's fifth; never the root
        self.pad_onsets = np.sort(rng.uniform(0.05, 0.8, 4))[rng.permutation(4)]
        self.drone_onsets = (2.0, FIFTH_ONSET)
        # per voice (drone root, fifth, pad 0..3): drift rate and phase, breath period and phase
        self.drift_hz = rng.uniform(*DRIFT_HZ, 6)
        self.drift_phase = rng.uniform(0.0, 2.0 * math.pi, 6)
        self.breath_hz = 1.0 / rng.uniform(*BREATH_S, 6)
        self.breath_phase = rng.uniform(0.0, 2.0 * math.pi, 6)
        order = _rng("chords").permutation(len(CHORD_DEGREES))
        self._memory_degrees = [CHORD_DEGREES[order[m % len(order)]] for m in range(self.n_memories)]
        self._chords: dict[int, np.ndarray] = {}
        self._motifs: dict[int, dict] = {}
        self.noise = _noise_tables(NOISE_LENGTHS)

    # -- the score: chords and phrases, from the scale and fixed seeds -------------------------

    def _pitch(self, degree: int) -> int:
        octave, step = divmod(int(degree), len(self.scale))
        return self.root + 12 * octave + self.scale[step]

    def _degree_of(self, place: int) -> int:
        if 0 <= place < self.n_memories:
            return self._memory_degrees[place]
        return CHORD_DEGREES[int(_rng("place", place).integers(len(CHORD_DEGREES)))]

    def chord(self, place: int) -> np.ndarray:
        """The four chord voices (MIDI notes) of a place: a seventh chord of the scale, open voicing."""
        chord = self._chords.get(place)
        if chord is None:
            d = self._degree_of(place)
            low = self.root + 15                      # a tenth above the drone's root and up
            close = sorted(low + (self._pitch(d + 2 * k) - low) % 12 for k in range(4))
            chord = np.array([close[0], close[2], close[1] + 12, close[3] + 12], np.float64)
            if place >= 0:                            # memories are few; a random walk's places endless
                self._chords[place] = chord
        return chord

    def motif(self, memory: int) -> dict:
        """A memory's phrase: 4-6 notes, mostly its chord's tones, in the bell register above the chords."""
        if memory not in self._motifs:
            rng = _rng("motif", memory)
            count = int(rng.integers(4, 7))
            d = self._degree_of(memory)
            base = 2 * len(self.scale) + 2               # a little above two octaves over the root
            chord_tones = [d + 2 * k for k in range(4)]
            deg = int(rng.choice(chord_tones))
            degrees = []
            for _ in range(count):
                degrees.append(deg)
                choices = [c for c in chord_tones + [deg - 1, deg + 1] if c != deg and abs(c - deg) <= 4]
                deg = int(rng.choice(choices))
            gaps = rng.choice([0.45, 0.6, 0.9, 1.2], count)
            period = self.s.motif_every_s * rng.uniform(0.85, 1.15)
            self._motifs[memory] = dict(
                offsets=np.concatenate([[0.0], np.cumsum(gaps[:-1])]),
                freqs=_midi_hz([self._pitch(base + x) for x in degrees]),
                velocity=rng.uniform(0.6, 1.0, count),
                onsets=rng.uniform(0.08, 0.85, count),        # forgetting onsets, one per note
                pans=rng.uniform(-0.6, 0.6, count),
                period=period, phase=rng.uniform(0.0, period))
        return self._motifs[memory]

    # -- one block --------------------------------------------------------------------------

    def block(self, start: int, n: int, state_a: FrameState, state_b: FrameState | None = None,
              cues_a: Cues | None = None, cues_b: Cues | None = None) -> np.ndarray:
        """Samples [start, start + n) as float32 [n, 2], parameters gliding from state_a to state_b."""
        state_b = state_a if state_b is None else state_b
        return self.frames([int(start), int(start) + int(n)], [state_a, state_b], [cues_a, cues_b])

    def frames(self, bounds, states: list[FrameState], cues: list[Cues | None]) -> np.ndarray:
        """Several consecutive blocks in one call: samples [bounds[0], bounds[-1]) as float32
        [n, 2], where block k, [bounds[k], bounds[k + 1]), glides from states[k] and cues[k] to
        states[k + 1] and cues[k + 1] as `block` would (a missing cue repeats the one before it).
        Per sample it is the same sound; per frame of a film it costs about half as much, the
        fixed work of a call being shared (benchmarks/render_speed.py)."""
        bounds = np.asarray(bounds, np.int64)
        start, n = int(bounds[0]), int(bounds[-1] - bounds[0])
        if n <= 0:
            return np.zeros((0, 2), np.float32)
        if len(states) != len(bounds) or len(cues) != len(bounds):
            raise ValueError("Soundscape.frames: one state and one cue per bound")
        cues = list(cues)
        for k, c in enumerate(cues):
            cues[k] = c or (cues[k - 1] if k else Cues())
        sr = self.sample_rate
        lengths = np.diff(bounds)
        seg = np.repeat(np.arange(len(lengths)), lengths)     # the block of each sample
        u = (np.arange(n) - (bounds[seg] - start)) / lengths[seg]   # position within its block, 0 .. <1
        follow = self.s.follow

        def lerp(values) -> np.ndarray:
            v = np.asarray(values, np.float64)
            return v[seg] + (v[seg + 1] - v[seg]) * u

        def level(name: str) -> np.ndarray:
            if not name:
                return np.zeros(n)
            return lerp([_clean(s.intensity(name)) for s in states])

        crush = level(follow.crush)
        pos = start + np.arange(n, dtype=np.int64)
        if crush.any():   # sample-and-hold on a grid of absolute positions: the same in any block
            hold = 1 + np.floor((self.max_hold - 1) * crush ** 1.5 + 0.5).astype(np.int64)
            pos = pos - pos % hold
        tau = pos / sr                                       # seconds on the audio clock (held)

        bright = np.clip(lerp([_clean(c.brightness) for c in cues]), 0.0, 1.0)
        dull = level(follow.dull)
        r_pad = TIMBRE_R[0] + (TIMBRE_R[1] - TIMBRE_R[0]) * bright * (1.0 - 0.8 * dull)
        # frequencies stay constant (a changing one would jump, its phase being f x absolute time):
        # colour widens the stereo image instead, from mono chorus to wide
        width = WIDTH[0] + (WIDTH[1] - WIDTH[0]) * lerp([_clean(c.colour) for c in cues])
        drift = level(follow.drift)
        voices = level(follow.voices)
        presence = self._presence(cues, lerp)
        tonal = 1.0 - THIN_DEPTH * level(follow.thin)           # gain of drone, chords and phrases

        left, right = np.zeros(n), np.zeros(n)
        # drone and chords: per voice one row left (detuned down) and one right (detuned up)
        freqs, gains, voice_ids = [], [], []
        for v, (note, amp, onset) in enumerate(zip((self.root, self.root + 7), DRONE_AMP, self.drone_onsets)):
            freqs.append(_midi_hz(note))
            gains.append(self.s.drone * amp * tonal * _alive(voices, onset))
            voice_ids.append(v)
        for slot in range(4):
            weights: dict[float, np.ndarray] = {}
            for place, w in presence.items():
                note = float(self.chord(place)[slot])
                weights[note] = weights.get(note, 0.0) + w
            alive = self.s.chords * PAD_AMP * tonal * _alive(voices, self.pad_onsets[slot])
            for note, w in weights.items():
                freqs.append(_midi_hz(note))
                gains.append(alive * np.sin(0.5 * math.pi * np.clip(w, 0.0, 1.0)))   # equal-power crossfade
                voice_ids.append(2 + slot)
        ctl = _Control(pos, sr)
        sounding = [k for k, g in enumerate(gains) if np.any(g)]    # dead voices cost nothing
        if sounding:
            ids = np.array([voice_ids[k] for k in sounding])
            breath = ctl.rows(np.sin(2.0 * math.pi * self.breath_hz[ids, None] * ctl.tau
                                     + self.breath_phase[ids, None]))
            gain = np.stack([gains[k] for k in sounding]) * (0.75 + 0.25 * breath)
            warp = self._drift_warp(ids, ctl, drift)
            base = np.array([freqs[k] for k in sounding], np.float64)
            for cents, near, far in ((-CHORUS_CENTS, left, right), (CHORUS_CENTS, right, left)):
                sound = np.sum(gain * _tones(base * 2.0 ** (cents / 1200.0), tau, warp, r_pad), axis=0)
                near += width * sound
                far += (1.0 - width) * sound

        self._add_motifs(left, right, tau, ctl, presence, level(follow.motif), bright, dull, drift, tonal)

        hiss = level(follow.hiss)
        if hiss.any():
            a, b = self.noise
            # squared: the first touches of the symptom stay below hearing, the last are plain
            g = HISS_AMP * hiss * hiss * (0.8 + 0.2 * np.sin(2.0 * math.pi * tau / 13.0))
            left += g * (a[pos % len(a)] + b[pos % len(b)]) * math.sqrt(0.5)
            right += g * (a[(pos + 40000) % len(a)] + b[(pos + 20000) % len(b)]) * math.sqrt(0.5)

        mix = np.stack([left, right], axis=1)                # [n, 2]
        if self.s.silence_with_lapses:
            mix *= (1.0 - self._darkness(states, bounds - start, u))[:, None]
        if crush.any():
            steps = 2.0 ** (16.0 - (16.0 - CRUSH_BITS) * crush ** 0.8 - 1.0)   # levels per unit, 2^(bits-1)
            mix = np.round(mix * steps[:, None]) / steps[:, None]
        swell = SWELL_S * sr
        if start < swell:       # a function of the absolute position, like everything else
            x = np.clip((start + np.arange(n)) / swell, 0.0, 1.0)
            mix *= (0.5 - 0.5 * np.cos(math.pi * x))[:, None]
        return (self.s.level * np.tanh(mix)).astype(np.float32)  # soft limit: never past the level

    # -- parts of a block -------------------------------------------------------------------

    @staticmethod
    def _presence(cues: list[Cues], lerp) -> dict[int, np.ndarray]:
        """How near the walk is to each place, per sample: weights summing to 1, each place's
        weight at the cues drawn straight between them (`lerp`, as every parameter of a block)."""
        at: dict[int, np.ndarray] = {}
        for k, c in enumerate(cues):
            f = _clean(c.fraction)
            for place, p in ((int(c.from_place), 1.0 - f), (int(c.to_place), f)):
                if p > 0.0:
                    at.setdefault(place, np.zeros(len(cues)))[k] += p
        return {place: lerp(w) for place, w in at.items()}

    def _drift_warp(self, ids: np.ndarray, ctl: _Control, drift: np.ndarray,
                    note_of: int | None = None) -> np.ndarray | float:
        """Time warp [R, n] per voice (or per note of a memory's phrase): its frequency wanders
        +-DRIFT_CENTS x drift on its own slow cycle. A bounded warp of time, not a change of
        frequency, so the phase stays a function of absolute time and never jumps. 0 without drift."""
        if not drift.any():
            return 0.0
        if note_of is None:
            hz, phase = self.drift_hz[ids], self.drift_phase[ids]
        else:
            hz = self.drift_hz[ids % 6] * (1.0 + 0.1 * note_of)
            phase = self.drift_phase[(ids + note_of) % 6] + ids
        depth = 2.0 ** (DRIFT_CENTS / 1200.0) - 1.0
        w = 2.0 * math.pi * hz[:, None]
        return drift[None, :] * depth * ctl.rows(np.sin(w * ctl.tau[None, :] + phase[:, None]) / w)

    def _add_motifs(self, left, right, tau, ctl, presence, forgetting, bright, dull, drift, tonal) -> None:
        """The phrases of the memories the walk is near, with their echoes.

        A note's tone takes its phase from absolute time, so all its echoes and returns share one
        tone: one tone per note, times the sum of their envelopes (taken every CONTROL_SAMPLES and
        drawn straight between; the softest edge, the 50 ms strike, spans dozens of points)."""
        if self.s.motif <= 0.0:
            return
        t_points = ctl.tau
        t0, t1 = float(tau[0]), float(tau[-1])
        r = (0.1 + 0.25 * bright * (1.0 - 0.8 * dull))[None, :]
        echo = np.arange(ECHOES + 1)
        echo_gain = self.s.space ** echo
        side = np.where(echo % 2 == 0, 1.0, -1.0)                      # echoes alternate sides
        for memory, weight in presence.items():
            if not 0 <= memory < self.n_memories or not np.any(weight > 1e-4):
                continue
            m = self.motif(memory)
            base = m["phase"] + m["offsets"][:, None] + ECHO_S * echo[None, :]                  # [J, K]
            cycles = np.arange(math.floor((t0 - NOTE_S - base.max()) / m["period"]),
                               math.floor((t1 - base.min()) / m["period"]) + 1)
            onset = base[:, :, None] + m["period"] * cycles[None, None, :]                      # [J, K, C]
            env = self._note_envelope(t_points - onset[..., None]).sum(axis=2)                 # [J, K, P]
            angle = 0.25 * math.pi * (1.0 + m["pans"][:, None] * side[None, :])                # [J, K]
            env_left = np.einsum("jkp,jk->jp", env, echo_gain * np.cos(angle))
            env_right = np.einsum("jkp,jk->jp", env, echo_gain * np.sin(angle))
            if not env_left.any() and not env_right.any():
                continue
            env_left, env_right = ctl.rows(env_left), ctl.rows(env_right)
            j = np.arange(len(m["freqs"]))
            common = (MOTIF_AMP * self.s.motif * math.sqrt(2.0)) * m["velocity"][:, None] \
                * _alive(forgetting[None, :], m["onsets"][:, None]) * (tonal * weight * weight)[None, :]
            tone = common * _tones(m["freqs"], tau, self._drift_warp(j, ctl, drift, note_of=memory), r)
            left += np.sum(tone * env_left, axis=0)
            right += np.sum(tone * env_right, axis=0)

    @staticmethod
    def _note_envelope(age: np.ndarray) -> np.ndarray:
        """Soft strike, exponential ring, smooth taper to exactly 0 at NOTE_S; 0 outside [0, NOTE_S)."""
        a = np.clip(age, 0.0, NOTE_S)
        attack = 0.5 - 0.5 * np.cos(math.pi * np.minimum(a / NOTE_ATTACK_S, 1.0))
        ring = np.exp(-np.maximum(a - NOTE_ATTACK_S, 0.0) / NOTE_DECAY_S)
        taper = np.clip((NOTE_S - a) / NOTE_TAPER_S, 0.0, 1.0)
        return np.where((age >= 0.0) & (age < NOTE_S), attack * ring * taper * taper * (3.0 - 2.0 * taper), 0.0)

    def _darkness(self, states: list[FrameState], offsets: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The picture's lapse darkness per sample: in each block exact at control points every
        CONTROL_SAMPLES, straight between (the fades last 0.35 s, so this is the picture's curve)."""
        levels = [_clean(s.intensity("lapses")) for s in states]
        out = np.zeros(len(u))
        for k in range(len(states) - 1):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            ia, ib = levels[k], levels[k + 1]
            if hi <= lo or (ia == 0.0 and ib == 0.0):
                continue
            a, b = states[k], states[k + 1]
            points = max(1, -(-(hi - lo) // CONTROL_SAMPLES))
            uk = np.arange(points + 1) / points
            dark = [darkness(a.t + (b.t - a.t) * x, ia + (ib - ia) * x, a.seed if x < 1.0 else b.seed) for x in uk]
            out[lo:hi] = np.interp(u[lo:hi], uk, dark)
        return out
