"""Progress that reads well on a terminal and in a log: tqdm's bar, or a plain line every few seconds.

Why it exists: tqdm redraws its bar with a carriage return many times a second. On a terminal that
is one line moving; in a log (a systemd unit, a CI job, `> file`) it is hundreds of `\\r` updates
run into one line, thousands in a long training run. Without a terminal the same figures are
written as a whole line every `LOG_EVERY_S` seconds, at the start and at the end. Shared by
rendering (installation) and training, which must not import each other.
"""
from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_EVERY_S = 10.0
LOG_FORMAT = "{desc}{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def progress_bar(total: int, *, unit: str = "it", desc: str | None = None, initial: int = 0,
                 disable: bool = False, file=None, every_s: float = LOG_EVERY_S):
    """tqdm's bar where `file` (stderr by default) is a terminal, else a `LogProgress` with its API."""
    file = sys.stderr if file is None else file
    isatty = getattr(file, "isatty", None)
    if callable(isatty) and isatty():
        return tqdm(total=total, unit=unit, desc=desc, initial=initial, disable=disable, file=file,
                    dynamic_ncols=True)
    return LogProgress(total, unit=unit, desc=desc, initial=initial, disable=disable, file=file, every_s=every_s)


class LogProgress:
    """The part of tqdm's API the project uses (update, set_postfix, format_dict, close, `with`),
    written as whole lines: the first at once, then at most one every `every_s`, the last at close."""

    def __init__(self, total: int, *, unit: str = "it", desc: str | None = None, initial: int = 0,
                 disable: bool = False, file=None, every_s: float = LOG_EVERY_S, clock=time.monotonic):
        self.total, self.unit, self.desc, self.initial, self.n = total, unit, desc, initial, initial
        self.disable, self.file, self.every_s, self.clock = disable, file or sys.stderr, every_s, clock
        self.postfix = ""
        self.start = clock()
        self._printed_n: int | None = None
        self._next = self.start
        self._write()

    @property
    def format_dict(self) -> dict:
        elapsed = self.clock() - self.start
        done = self.n - self.initial
        return dict(n=self.n, total=self.total, elapsed=elapsed, unit=self.unit, initial=self.initial,
                    rate=done / elapsed if elapsed > 0 and done else None, postfix=self.postfix,
                    prefix=f"{self.desc}: " if self.desc else "")

    def __str__(self) -> str:
        return tqdm.format_meter(**self.format_dict, bar_format=LOG_FORMAT)

    def _write(self) -> None:
        if self.disable:
            return
        self.file.write(str(self) + "\n")
        self.file.flush()
        self._printed_n = self.n
        self._next = self.clock() + self.every_s

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.clock() >= self._next:
            self._write()

    def set_postfix(self, **figures) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in figures.items())

    def close(self) -> None:
        if self._printed_n != self.n:
            self._write()
        self.disable = True

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
