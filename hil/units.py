"""The one number formatter: plain values for records and messages, amounts for sentences.

``plain(2183168.0)`` -> "2183168", ``plain(0.25)`` -> "0.25": a value as a reader would write it.
``amount(184320, "bytes")`` -> "180 KiB", ``amount(0.42, "s")`` -> "420 ms": a distance or a
change, without its sign ("fell 180 KiB", "below the band by 156 KiB").
"""
from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB


def _trim(x: float, places: int = 1) -> str:
    text = f"{x:.{places}f}"
    if "." in text:   # '230' keeps its zero; '42.50' loses the trailing ones
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def plain(value: float) -> str:
    """A number as written by hand: whole numbers without a decimal point, others with %g."""
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"


def amount(value: float, unit: str, places: int | None = None) -> str:
    """The size of ``value`` for a sentence: bytes in bytes/KiB/MiB, seconds in ms/s.
    ``places``: decimals kept for KiB and MiB (default 1 and 2)."""
    v = abs(float(value))
    if unit == "bytes":
        if v < KiB:
            return f"{v:g} bytes"
        if v < MiB:
            return f"{_trim(v / KiB, 1 if places is None else places)} KiB"
        return f"{_trim(v / MiB, 2 if places is None else places)} MiB"
    if unit == "s":
        return f"{_trim(v * 1000)} ms" if v < 1 else f"{_trim(v, 2)} s"
    return f"{v:g} {unit}".rstrip()


def value(v: float, unit: str) -> str:
    """A measured value in a report line: bytes and whole numbers exactly, others to 3 digits."""
    if unit == "bytes" or (v == int(v) and abs(v) < 1e15):
        return str(int(v)) if v == int(v) else f"{v:g}"
    return f"{v:.3g}" if unit != "s" else f"{v:.3f}".rstrip("0").rstrip(".")
