"""Live sound: the soundscape through sounddevice, fed by the frame loop, never in its way.

Three parties, so that neither the picture nor the sound card ever waits on the other:
  * the frame loop calls `feed(state, cues)` once a frame: it stores a reference and returns;
  * a producer thread synthesises blocks (~21 ms) gliding from the last block's state to the newest
    and puts them into a bounded queue; its blocking `put` paces it to the sound card;
  * PortAudio's callback copies from the queue. It never blocks and never raises: when the queue
    is empty it plays silence and counts an underrun (for the HUD and the log), then fades back in.

A gallery machine may have no sound at all, or lose it: no PortAudio library, no such device, a
USB interface unplugged. Then the piece runs on silent after one log line, and the producer looks
for the device by name again every `sound.retry_s` (re-scanning PortAudio's device list, which it
otherwise reads only once).
"""
from __future__ import annotations

import logging
import queue
import threading
import time

import numpy as np

from .synth import Cues, Soundscape

log = logging.getLogger("lapses.sound")

BLOCK_S = 1024 / 48000          # synthesised block length
QUEUE_BLOCKS = 12               # ~0.26 s of sound between the producer and the card
PREFILL_BLOCKS = 4              # blocks queued before the stream starts
RAMP_S = 0.02                   # fade after an underrun, and out at the end
UNDERRUN_LOG_S = 10.0           # at most one underrun log line this often


def load_sounddevice():
    """The sounddevice module; OSError when the PortAudio library is missing (ImportError without
    the package). A function so tests can replace the whole device layer."""
    import sounddevice
    return sounddevice


class LiveSound:
    """The live soundscape: start(), feed() every frame, close(); `underruns` and `hud_line()` to show."""

    def __init__(self, settings, n_memories: int, loader=None):
        self.settings = settings                # SoundSettings
        self.n_memories = int(n_memories)
        self._loader = loader or load_sounddevice
        self.sd = None
        self.underruns = 0                      # callbacks that found the queue empty, or the card underflowing
        self.errors = 0                         # callbacks that failed (and played silence)
        self.device_name = ""
        self.sample_rate = 0
        self.state = "off"                      # off | waiting | playing | silent
        self._latest: tuple | None = None       # (state, cues), replaced by each feed
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_BLOCKS)
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream = None
        self._scape: Soundscape | None = None
        self._carry, self._carry_at = None, 0   # the block the callback is playing from
        self._gain, self._target = 0.0, 1.0     # the callback's fade (in after underruns, out at the end)
        self._warned = False

    # -- the frame loop's side ----------------------------------------------------------------

    def start(self) -> None:
        """Load sounddevice and start the producer; without PortAudio: one log line, silent."""
        try:
            self.sd = self._loader()
        except (OSError, ImportError) as e:
            log.warning("sound: off, PortAudio is not available (%s); the piece runs on silent", e)
            self.state = "off"
            return
        self.state = "waiting"
        self._thread = threading.Thread(target=self._produce, name="lapses-sound", daemon=True)
        self._thread.start()

    def feed(self, state, cues: Cues | None = None) -> None:
        """The piece's newest state (once a frame); never waits."""
        self._latest = (state, cues)

    def close(self) -> None:
        """Fade out, stop the producer, close the stream."""
        self._target = 0.0
        end = time.monotonic() + 0.5
        while self._stream is not None and self._gain > 0.0 and time.monotonic() < end:
            time.sleep(0.005)   # the callback fades out; stop() then plays what is queued in the card
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
        self._close_stream()

    def hud_line(self) -> str:
        if self.state == "playing":
            return (f"sound {self.device_name} {self.sample_rate / 1000:g} kHz   underruns {self.underruns}"
                    + (f"   errors {self.errors}" if self.errors else ""))
        if self.state == "silent":
            return f"sound: silent, no device {self.settings.device or '(default)'}; retrying"
        return "sound: off (no PortAudio)" if self.state == "off" else "sound: starting"

    # -- the producer thread ------------------------------------------------------------------

    def _produce(self) -> None:
        next_try, last_log, logged = 0.0, time.monotonic(), 0
        previous = None
        position = 0
        while not self._stop.is_set():
            try:
                if self._stream is None:
                    if self._latest is None or time.monotonic() < next_try:
                        self._stop.wait(0.05)
                        continue
                    next_try = time.monotonic() + self.settings.retry_s
                    if not self._open():
                        continue
                    previous, position = self._latest, 0
                    for _ in range(PREFILL_BLOCKS):
                        previous, position = self._make_block(previous, position)
                    self._stream.start()
                    self.state = "playing"
                    log.info("sound: playing on %s at %d Hz", self.device_name, self.sample_rate)
                    self._warned = False
                    continue
                if self._lost.is_set() or not self._stream.active:
                    log.warning("sound: lost %s; the piece runs on silent, looking for it every %g s",
                                self.device_name, self.settings.retry_s)
                    self._close_stream()
                    self.state = "silent"
                    self._warned = True
                    next_try = time.monotonic() + self.settings.retry_s
                    continue
                previous, position = self._make_block(previous, position)
                if self.underruns > logged and time.monotonic() - last_log >= UNDERRUN_LOG_S:
                    log.warning("sound: %d underruns in the last %.0f s (the synthesis fell behind the card)",
                                self.underruns - logged, time.monotonic() - last_log)
                    logged, last_log = self.underruns, time.monotonic()
            except Exception as e:      # the producer must outlive anything (a device that will not
                if not self._warned:    # start, a bug); the picture goes on, and the log is not flooded
                    log.warning("sound: %s; the piece runs on silent, trying again every %g s",
                                str(e).strip() or type(e).__name__, self.settings.retry_s, exc_info=True)
                    self._warned = True
                self._close_stream()
                self.state = "silent"
                next_try = time.monotonic() + self.settings.retry_s

    def _make_block(self, previous, position: int):
        """Synthesise one block from the previous state to the newest and queue it (waits for room)."""
        latest = self._latest
        n = max(64, round(BLOCK_S * self.sample_rate))
        # position counts from 0 at each (re)opening, so the sound swells in (synth.SWELL_S)
        block = self._scape.block(position, n, previous[0], latest[0], previous[1], latest[1])
        while not self._stop.is_set():
            try:
                self._queue.put(block, timeout=0.1)
                break
            except queue.Full:
                if self._lost.is_set() or (self._stream is not None and not self._stream.active):
                    break
        return latest, position + n

    def _open(self) -> bool:
        """Open the output stream by name; False (logged once until it works) when there is none."""
        sd = self.sd
        device = self.settings.device or None
        if self._warned:      # PortAudio lists devices once; look again for one plugged in since
            try:
                sd._terminate()
                sd._initialize()
            except Exception:
                pass
        try:
            info = sd.query_devices(device, "output")
            rate = int(self.settings.sample_rate)
            try:
                sd.check_output_settings(device=device, samplerate=rate, channels=2, dtype="float32")
            except Exception:
                rate = int(info["default_samplerate"])
            self._lost.clear()
            self._drain()
            self._gain, self._target = 0.0, 1.0
            stream = sd.OutputStream(device=device, samplerate=rate, channels=2, dtype="float32",
                                     latency="high", callback=self._callback, finished_callback=self._finished)
        except Exception as e:
            if not self._warned:
                log.warning("sound: no output device %s (%s); the piece runs on silent, looking again every %g s",
                            repr(self.settings.device) if self.settings.device else "(the default)",
                            str(e).strip() or type(e).__name__, self.settings.retry_s)
                self._warned = True
            self.state = "silent"
            return False
        self._stream = stream
        self.device_name = str(info.get("name", device or "default"))
        if self._scape is None or self.sample_rate != rate:
            self._scape = Soundscape(self.settings, self.n_memories, rate)
        self.sample_rate = rate
        return True

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            except Exception:
                pass
            try:
                stream.close()
            except Exception:
                pass

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._carry, self._carry_at = None, 0

    # -- PortAudio's thread -------------------------------------------------------------------

    def _finished(self) -> None:
        if not self._stop.is_set():
            self._lost.set()

    def _callback(self, outdata, frames, time_info, status) -> None:
        """Fill outdata [frames, 2] from the queue; silence when it runs dry. Never blocks or raises."""
        try:
            if getattr(status, "output_underflow", False):
                self.underruns += 1
            filled = 0
            while filled < frames:
                if self._carry is None or self._carry_at >= len(self._carry):
                    try:
                        self._carry, self._carry_at = self._queue.get_nowait(), 0
                    except queue.Empty:
                        outdata[filled:] = 0.0
                        if self._target > 0.0:
                            self.underruns += 1
                        self._gain = 0.0            # come back with a fade, not a click
                        return
                take = min(frames - filled, len(self._carry) - self._carry_at)
                outdata[filled:filled + take] = self._carry[self._carry_at:self._carry_at + take]
                self._carry_at += take
                filled += take
            self._apply_gain(outdata, frames)
        except Exception:
            self.errors += 1
            try:
                outdata.fill(0)
            except Exception:
                pass

    def _apply_gain(self, outdata, frames: int) -> None:
        if self._gain == self._target:
            if self._target == 0.0:
                outdata.fill(0)
            return
        step = 1.0 / max(1.0, RAMP_S * (self.sample_rate or 48000))
        ramp = self._gain + step * np.arange(1, frames + 1) * (1.0 if self._target > self._gain else -1.0)
        ramp = np.clip(ramp, min(self._gain, self._target), max(self._gain, self._target))
        outdata *= ramp[:, None].astype(outdata.dtype)
        self._gain = float(ramp[-1])
