"""The heads-up display: what a performer or technician needs to read at a glance.

fps and frame-time p99 (is it smooth?), progress and stage (where is the illness?), the active
symptoms with bars (what is happening to the network?), the device, the sound (its device and
underruns: is the sound card starved?), and the last action taken.
Drawn with pygame's bundled font, so it needs no system fonts on a kiosk.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import pygame


class FrameTimes:
    """Rolling frame times for fps and p99 (seconds)."""

    def __init__(self, keep: int = 600):
        self.times: deque[float] = deque(maxlen=keep)

    def add(self, dt: float) -> None:
        self.times.append(dt)

    def fps(self) -> float:
        recent = list(self.times)[-60:]
        return len(recent) / sum(recent) if recent and sum(recent) > 0 else 0.0

    def p99_ms(self) -> float:
        return float(np.percentile(self.times, 99)) * 1000 if self.times else 0.0


class Hud:
    def __init__(self, screen_height: int):
        self.size = max(14, screen_height // 45)
        self.font = pygame.font.Font(None, self.size)
        self.message, self.message_until = "", 0.0

    def say(self, text: str, now: float, seconds: float = 3.0) -> None:
        self.message, self.message_until = text, now + seconds

    def lines(self, piece, times: FrameTimes, device: str, model: str,
              sound: str | None = None, inputs: str | None = None) -> list[tuple[str, float | None]]:
        s = piece.sample()
        p = s.point
        o = piece.course_state.overrides
        out: list[tuple[str, float | None]] = [
            (f"{times.fps():5.1f} fps   p99 {times.p99_ms():5.1f} ms   {device}", None),
            (f"progress {p.progress:.3f} (course {p.linear:.0%})   stage {p.stage} {p.stage_name}   "
             f"life {p.cycle} seed {p.seed}", None),
            (f"walk x{piece.speed:.2f}   decay {o.decay:+.2f}   lucid {s.lucid:.2f}"
             f"{'   PAUSED' if piece.paused else ''}   {model}", None),
        ]
        if sound is not None:
            out.append((sound, None))
        if inputs is not None:
            out.append((inputs, None))
        for name, value in sorted(s.intensities.items(), key=lambda kv: -kv[1]):
            if value >= 0.005:
                pin = "*" if name in o.pinned else ""
                out.append((f"{name}{pin} {value:.2f}", value))
        return out

    def draw(self, screen: pygame.Surface, piece, times: FrameTimes, device: str, model: str, now: float,
             sound: str | None = None, inputs: str | None = None) -> None:
        lines = self.lines(piece, times, device, model, sound, inputs)
        if self.message and now < self.message_until:
            lines.append((self.message, None))
        pad, lh = self.size // 2, int(self.size * 1.05)
        bar_w = self.size * 5
        width = max(self.font.size(text)[0] + (bar_w + pad if v is not None else 0) for text, v in lines) + 2 * pad
        panel = pygame.Surface((width, lh * len(lines) + 2 * pad), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 160))
        for i, (text, value) in enumerate(lines):
            y = pad + i * lh
            x = pad
            if value is not None:
                pygame.draw.rect(panel, (90, 90, 90), (x, y + lh // 4, bar_w, lh // 2), 1)
                pygame.draw.rect(panel, (230, 200, 120), (x, y + lh // 4, int(bar_w * value), lh // 2))
                x += bar_w + pad
            panel.blit(self.font.render(text, True, (235, 235, 235)), (x, y))
        screen.blit(panel, (self.size, self.size))
