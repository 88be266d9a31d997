"""Durations as people write them in settings.yaml and on the command line: '8h', '30d', '1h30m'.

Why it exists: the settings check a course's duration when they are read, and the course turns
it into seconds; both need the same small language, and neither should import the other for it.
"""
from __future__ import annotations

import math
import re

_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw])", re.IGNORECASE)
MIN_DURATION_S = 1.0      # a course shorter than a second shows nothing; 5e-324 s overflowed the arithmetic
DURATION_HELP = ("a number of seconds (at least 1) or amounts with units s, m, h, d, w: '45s', '90m', '8h', '30d', "
                 "'1h30m'")


def parse_duration(text: str | int | float) -> float:
    """'8h' -> 28800.0 seconds. Accepts '45s', '90m', '1.5h', '30d', '2w', '1h30m', or a bare number
    of seconds. Raises ValueError for anything else, including durations shorter than a second."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration; allowed: {DURATION_HELP}")
    if isinstance(text, (int, float)):
        try:
            seconds = float(text)
        except OverflowError:           # an integer too large for a float: no duration
            raise ValueError(f"{text!r} is not a duration; allowed: {DURATION_HELP}") from None
    elif isinstance(text, str):
        s = text.strip()
        try:
            seconds = float(s)
        except ValueError:
            pos, seconds, matched = 0, 0.0, False
            while pos < len(s):
                m = _PART.match(s, pos)
                if not m:
                    raise ValueError(f"{text!r} is not a duration; allowed: {DURATION_HELP}") from None
                seconds += float(m.group(1)) * _UNIT_S[m.group(2).lower()]
                pos, matched = m.end(), True
            if not matched:
                raise ValueError(f"{text!r} is not a duration; allowed: {DURATION_HELP}") from None
    else:
        raise ValueError(f"{text!r} is not a duration; allowed: {DURATION_HELP}")
    if not math.isfinite(seconds) or seconds < MIN_DURATION_S:
        raise ValueError(f"{text!r} is not a duration; allowed: {DURATION_HELP}")
    return seconds
