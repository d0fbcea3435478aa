"""Progress of long transfers (uploads, ISP flashing): bytes, rate and time left.

On a terminal one line is redrawn in place (``\\r``, at most every ``REDRAW_S``) and ends with
the total; anywhere else (a log file, CI) nothing is drawn while it runs and one final line is
written at the end, so logs carry no ``\\r`` noise:

    firmware:  45% 832 KiB of 1.78 MiB, 150.3 KiB/s, 7 s left      (a terminal, while it runs)
    firmware: 100% 1.78 MiB in 12.1 s, 150.3 KiB/s                 (the end, anywhere)

``Meter`` is one transfer; ``LabelledMeters`` follows a ``progress(label, done, total)`` callback
whose label changes between phases (the ISP stub, then the image), one meter per phase. The
pytest plugin draws the same lines through its terminal reporter (hil.plugin.progress).
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from hil.units import amount

REDRAW_S = 0.1


def size(n: float) -> str:
    return amount(n, "bytes")


def rate(moved: float, seconds: float) -> str:
    return f"{size(moved / seconds)}/s" if seconds > 0 and moved > 0 else "-/s"


def left(done: float, total: float, seconds: float, since: float = 0) -> str:
    moved = done - since
    if done >= total:
        return "0 s left"
    if moved <= 0 or seconds <= 0:
        return "? left"
    remaining = (total - done) * seconds / moved
    return f"{remaining:.0f} s left" if remaining < 120 else f"{remaining / 60:.0f} min left"


def live_line(label: str, done: int, total: int, seconds: float, since: int = 0) -> str:
    """``seconds`` since the first report, when ``since`` bytes were done (the rate counts from there)."""
    pct = 100 * done // max(1, total)
    return (f"{label}: {pct:3d}% {size(done)} of {size(total)}, {rate(done - since, seconds)}, "
            f"{left(done, total, seconds, since)}")


def final_line(label: str, done: int, total: int, seconds: float, since: int = 0) -> str:
    if done >= total:
        return f"{label}: 100% {size(total)} in {seconds:.1f} s, {rate(total - since, seconds)}"
    pct = 100 * done // max(1, total)
    return f"{label}: stopped at {pct}% ({size(done)} of {size(total)}) after {seconds:.1f} s"


class Meter:
    """One transfer shown on ``stream``: redrawn on a terminal, one final line elsewhere."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.t0 = clock()
        self.done = 0
        self.first: int | None = None      # bytes already done at the first report: the rate counts from there
        self._drawn = 0.0
        self._width = 0
        self.finished = False

    def update(self, done: int, total: int | None = None) -> None:
        if self.first is None:
            self.first, self.t0 = done, self.clock()
        self.done = done
        if total is not None:
            self.total = total
        if not self.tty:
            return
        now = self.clock()
        if now - self._drawn >= REDRAW_S and done < self.total:
            self._drawn = now
            self._draw(live_line(self.label, done, self.total, now - self.t0, self.first or 0), end="")

    def finish(self) -> str:
        """Write the final line (once); returns it."""
        line = final_line(self.label, self.done, self.total, self.clock() - self.t0, self.first or 0)
        if not self.finished:
            self.finished = True
            self._draw(line, end="\n")
        return line

    def _draw(self, text: str, end: str) -> None:
        if self.tty:
            pad = " " * max(0, self._width - len(text))
            self.stream.write("\r" + text + pad + end)
            self._width = 0 if end else len(text)
        else:
            self.stream.write(text + end)
        self.stream.flush()


class LabelledMeters:
    """A ``progress(label, done, total)`` callback (hil.isp) drawn as one meter per label."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.tty, self.clock = stream, tty, clock
        self.meter: Meter | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.meter is None or self.meter.label != label or done < self.meter.done:
            self.close()
            self.meter = Meter(label, total, self.stream, self.tty, self.clock)
        self.meter.update(done, total)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.meter is not None and not self.meter.finished:
            self.meter.finish()
