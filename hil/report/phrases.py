"""Numbers and changes as a person reads them: '180 KiB', '420 ms', 'fell 256 KiB (a -> b)'."""
from __future__ import annotations

import math


def human_amount(value: float, unit: str) -> str:
    """An amount for a sentence: 184320 bytes -> '180 KiB', 0.42 s -> '420 ms'."""
    v = abs(value)
    if not math.isfinite(v):
        return f"{v} {unit}".rstrip()
    if unit == "bytes":
        if v < 1024:
            return f"{v:g} bytes"
        if v < 1024 ** 2:   # three significant figures at most: '224 KiB', '42.6 KiB'
            return f"{_trim(v / 1024, 0 if v >= 100 * 1024 else 1)} KiB"
        return f"{_trim(v / 1024 ** 2, 2)} MiB"
    if unit == "s":
        return f"{_trim(v * 1000)} ms" if v < 1 else f"{_trim(v, 2)} s"
    return f"{v:g} {unit}".rstrip()


def human_range(a: float, b: float, unit: str) -> str:
    """Two amounts as one range: '256-368 KiB' when they share a unit word, else 'x to y'."""
    lo, hi = sorted((abs(a), abs(b)))
    low, high = human_amount(lo, unit), human_amount(hi, unit)
    if low == high:
        return low
    lnum, _, lword = low.partition(" ")
    hnum, _, hword = high.partition(" ")
    if lword == hword:
        return f"{lnum}-{hnum} {hword}".rstrip()
    return f"{low} to {high}"


def _trim(x: float, places: int = 1) -> str:
    text = f"{x:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def human_value(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return str(value)
    if unit == "bytes" or (value == int(value) and abs(value) < 1e15):
        return str(int(value)) if value == int(value) else f"{value:g}"
    return f"{value:.3g}" if unit != "s" else f"{value:.3f}".rstrip("0").rstrip(".")


def measurement_phrase(name: str, where: str, old: float, new: float, unit: str) -> str:
    """'threshold_sd_bytes on sim/maixpy-v0.6.2-full fell 180 KiB (2252800 -> 2068480)';
    without ``where`` the ' on ...' part is left out."""
    verb = "rose" if new > old else "fell"
    on = f" on {where}" if where else ""
    text = (f"{name}{on} {verb} {human_amount(new - old, unit)} "
            f"({human_value(old, unit)} -> {human_value(new, unit)})")
    if unit == "s":
        text = text[:-1] + " s)"
    return text


def limits_text(low: float | None, high: float | None, unit: str) -> str:
    """'[2150000, 2300000]', '[-inf, 1024]'."""
    lo = human_value(low, unit) if low is not None else "-inf"
    hi = human_value(high, unit) if high is not None else "+inf"
    return f"[{lo}, {hi}]"
