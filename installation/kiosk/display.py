"""The screen of a kiosk: it must not blank, minimise or show a cursor, for weeks.

Why it exists: a desktop is made for a person who comes back — it dims, blanks, sends the
monitor to sleep, and minimises a fullscreen window when focus moves (a notification, a
plugged-in keyboard). A gallery has no one to wake it. SDL is told not to allow the screensaver
and not to minimise on focus loss (both must be set before the display starts), and on X11 the
server's own blanking and DPMS are switched off for this session with `xset` when it is there.
All of it is best effort: a missing `xset` or a Wayland session is one log line, not an error.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from typing import MutableMapping

log = logging.getLogger("lapses.kiosk")

SDL_HINTS = {
    "SDL_VIDEO_ALLOW_SCREENSAVER": "0",        # SDL inhibits the screensaver (X11, Wayland idle-inhibit, D-Bus)
    "SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS": "0",   # a fullscreen window stays up when something takes focus
}
XSET_ARGS = ("s", "off", "s", "noblank", "-dpms")   # no screensaver, no blanking, no monitor power-saving


def prepare(environ: MutableMapping[str, str] | None = None, run=subprocess.run) -> list[str]:
    """Before pygame.display.init(): SDL hints, and X11 blanking off. Returns what was done, for the log."""
    environ = os.environ if environ is None else environ
    done = []
    for name, value in SDL_HINTS.items():
        if name not in environ:               # a technician's own setting wins
            environ[name] = value
            done.append(f"{name}={value}")
    if environ.get("DISPLAY") and environ.get("SDL_VIDEODRIVER", "") in ("", "x11"):
        xset = shutil.which("xset")
        if xset is None:
            log.info("kiosk: xset not found; screen blanking is left to SDL (install x11-xserver-utils to be sure)")
        else:
            try:
                r = run([xset, *XSET_ARGS], capture_output=True, text=True, timeout=5)
                if r.returncode == 0:
                    done.append("xset " + " ".join(XSET_ARGS))
                else:
                    log.info("kiosk: xset %s failed: %s", " ".join(XSET_ARGS), (r.stderr or "").strip())
            except (OSError, subprocess.SubprocessError) as e:
                log.info("kiosk: xset could not run (%s)", e)
    return done
