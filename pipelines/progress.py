"""Progress of long-running commands, on stderr: a live tqdm bar on a terminal; elsewhere (a log
file, a pipe, a batch job) one plain line every `STEP_PERCENT` percent or every `STEP_SECONDS`
seconds, whichever comes first, and a last line when the work is done (not when it is
interrupted). Every command that shows progress uses `progress_bar`.

    with progress_bar(total, "build train", "sample", enabled=not quiet) as bar:
        ...
        bar.update(k)
"""
from __future__ import annotations

import sys
import time

STEP_PERCENT = 5
STEP_SECONDS = 60.0


def progress_bar(total: int, desc: str, unit: str = "sample", enabled: bool = True, initial: int = 0,
                 stream=None, leave: bool = True):
    """A bar with `update(n)`, `set_postfix(**values)`, `close()`, usable as a context manager."""
    stream = stream if stream is not None else sys.stderr
    if not enabled or total <= 0:
        return _Silent()
    if _isatty(stream):
        from tqdm import tqdm
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream, smoothing=0.1, leave=leave)
    return LineProgress(total, desc, unit, initial, stream)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class LineProgress:
    """Plain progress lines for a non-terminal: `desc: n/total units (p%), r units/s, t left`."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, stream=None, clock=time.monotonic):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._t0 = self._last_t = clock()
        self._n0 = initial
        self._last_step = self._step(initial)
        self._printed = None
        self._postfix = ""

    def _step(self, n: int) -> int:
        return 100 * n // self.total // STEP_PERCENT

    def update(self, k: int = 1) -> None:
        self.n += k
        now = self._clock()
        if self._step(self.n) > self._last_step or now - self._last_t >= STEP_SECONDS:
            self._line(now)

    def set_postfix(self, **values) -> None:
        self._postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def _line(self, now: float) -> None:
        self._last_t, self._last_step, self._printed = now, self._step(self.n), self.n
        elapsed = now - self._t0
        rate = (self.n - self._n0) / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {self.n}/{self.total} {self.unit}s ({100 * self.n // self.total}%)"
        if rate > 0:
            text += f", {rate:.3g} {self.unit}s/s"
            text += f", {_duration((self.total - self.n) / rate)} left" if self.n < self.total else \
                f", {_duration(elapsed)} in all"
        if self._postfix:
            text += f", {self._postfix}"
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._printed != self.n:
            self._line(self._clock())

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()


class _Silent:
    def update(self, k: int = 1) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass
