"""Camera presence: a visitor's face brings a brief lucid interval.

OpenCV reads the camera on this module's own thread; a face detector looks at a grey copy of a
frame every `check_every_s`; a tracker turns "a face / no face" into `arrive` and `leave`
events (leaving only after `leave_after_s` without a face, so a turned head is not a departure),
which go on the inputs' queue and through the mapping table like any key (by default arrive ->
the `visit` action: a lucid interval if one is due, shorter and rarer as the course goes on).

What it sees: the copy's longer side is DETECT_SIDE (320) pixels and the cascade's smallest face
is 24 of them, so a face 1/13 of the frame's width or more: with a usual webcam (60-70 degrees
across), a visitor up to about 1.5-2 m away. A look costs ~0.1-0.3 s of one core on a small CPU;
it runs on one OpenMP thread (so it never fights the renderer for every core), and not at all
while the scene does not change (`SceneGate`: an empty room, or a visitor standing still, costs
a thumbnail per look).

The detector (models/faces.py, shared with the training's framing of photographs) is OpenCV's
trained LBP frontal-face cascade that scikit-image carries, run by skimage.feature.Cascade.
No camera or no frames: one log line, and the piece runs on.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

import numpy as np

from models.faces import DETECT_SIDE, MIN_FACE_PX, FaceDetector  # noqa: F401 (shared with the training's framing)

log = logging.getLogger("lapses.presence")

GATE_SIDE = 32         # the thumbnail SceneGate compares
GATE_CHANGE = 4.0      # mean grey-level change (0..255) of the thumbnail that counts as a change
GATE_MAX_S = 10.0      # look again at least this often, changed or not


class SceneGate:
    """Whether a frame is worth a look: the detector's answer cannot change while the picture does
    not, so a frame whose small blurred thumbnail is within GATE_CHANGE of the one at the last
    look keeps the last answer (at most GATE_MAX_S). Pure: frames and times in, for the tests."""

    def __init__(self, change: float = GATE_CHANGE, max_s: float = GATE_MAX_S):
        self.change, self.max_s = change, max_s
        self._ref: np.ndarray | None = None
        self._at = 0.0

    @staticmethod
    def thumbnail(frame: np.ndarray) -> np.ndarray:
        import cv2
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame[..., :3], cv2.COLOR_RGB2GRAY)
        return cv2.resize(grey, (GATE_SIDE, GATE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)

    def changed(self, frame: np.ndarray, t: float) -> bool:
        """True (and this frame becomes the reference) when the detector should look at it."""
        thumb = self.thumbnail(frame)
        if self._ref is not None and t - self._at < self.max_s and \
                float(np.abs(thumb - self._ref).mean()) < self.change:
            return False
        self._ref, self._at = thumb, t
        return True


def _one_openmp_thread() -> None:
    """Let the detector (scikit-image's OpenMP loops) use one core from this thread on: with all of
    them it would spin against the renderer's threads on a small machine. Per thread in OpenMP;
    the rest of the piece keeps its threads. Without libgomp: nothing to do."""
    import ctypes
    try:
        ctypes.CDLL("libgomp.so.1").omp_set_num_threads(1)
    except (OSError, AttributeError):
        pass


class PresenceTracker:
    """'face seen?' at times t -> 'arrive' / 'leave' events; pure, for the thread and the tests."""

    def __init__(self, leave_after_s: float):
        self.leave_after_s = leave_after_s
        self.here = False
        self.last_seen: float | None = None

    def feed(self, seen: bool, t: float) -> str | None:
        if seen:
            self.last_seen = t
            if not self.here:
                self.here = True
                return "arrive"
        elif self.here and self.last_seen is not None and t - self.last_seen >= self.leave_after_s:
            self.here = False
            return "leave"
        return None


class PresenceCamera:
    """Reads a camera on a thread and posts ('presence', 'arrive' | 'leave') events."""

    def __init__(self, settings, post: Callable[[tuple], None], capture_factory: Callable | None = None,
                 detector: FaceDetector | None = None):
        self.settings = settings
        self.post = post
        self.capture_factory = capture_factory
        self.detector = detector
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cap = None
        self.watching = False

    def start(self) -> None:
        """Open the camera and watch it, all on the thread: a slow camera cannot delay a frame."""
        self._thread = threading.Thread(target=self._run, name="lapses-presence", daemon=True)
        self._thread.start()

    def _open(self):
        import cv2
        factory = self.capture_factory or cv2.VideoCapture
        try:
            with _opencv_quiet():           # OpenCV's own warnings about a missing camera: ours is the one line
                cap = factory(self.settings.camera)
                ok = cap is not None and cap.isOpened()
        except Exception as e:
            log.info("presence: camera %d cannot be opened (%s); the piece runs on without it", self.settings.camera, e)
            return None
        if not ok:
            log.info("presence: no camera %d; the piece runs on without it", self.settings.camera)
            return None
        return cap

    def _run(self) -> None:
        self._cap = self._open()
        if self._cap is None:
            return
        try:
            self._watch()
        except Exception as e:                     # e.g. no face cascade: one line, and the piece runs on
            log.warning("presence: stopped watching (%s: %s); the piece runs on without it", type(e).__name__, e)
        finally:                                   # released on this thread: never while it is reading
            self.watching = False
            try:
                self._cap.release()
            except Exception:
                pass

    def _watch(self) -> None:
        import time
        _one_openmp_thread()
        self.detector = self.detector or FaceDetector()
        self.watching = True
        log.info("presence: watching camera %d", self.settings.camera)
        tracker = PresenceTracker(self.settings.leave_after_s)
        gate = SceneGate()
        seen = False
        failing = False
        while not self._stop.wait(self.settings.check_every_s):
            try:
                ok, frame = self._cap.read()
            except Exception:
                ok, frame = False, None
            if not ok or frame is None:
                if not failing:
                    log.warning("presence: the camera gives no frames; still trying")
                failing = True
                continue
            failing = False
            now = time.monotonic()
            try:
                if gate.changed(frame, now):
                    seen = self.detector.present(frame)
            except Exception as e:                 # a strange frame must not end the thread
                log.debug("presence: detector failed (%s)", e)
                continue
            event = tracker.feed(seen, now)
            if event is not None:
                self.post(("presence", event))

    def close(self) -> None:
        """Stop the thread; it releases the camera itself (a release racing a read can crash OpenCV)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            if self._thread.is_alive():
                log.warning("presence: the camera thread did not stop within 3 s; leaving it to the exit")


class _opencv_quiet:
    """OpenCV's log silenced for a moment (it prints its own lines when a camera is missing)."""

    def __enter__(self):
        self.previous = None
        try:
            import cv2.utils.logging as cvlog
            self.previous = cvlog.getLogLevel()
            cvlog.setLogLevel(cvlog.LOG_LEVEL_SILENT)
        except Exception:
            pass
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            try:
                import cv2.utils.logging as cvlog
                cvlog.setLogLevel(self.previous)
            except Exception:
                pass
        return False
