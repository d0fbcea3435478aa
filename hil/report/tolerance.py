"""How much a measurement may move between two nights before a report mentions it, and which
way is worse.

Defaults per unit (configurable per unit or per measurement name):
- bytes: the larger of 4096 bytes (one bisection step of the threshold search) and 2 % of the
  old value, so a 3 MB heap is not reported for 40 KiB of noise while a leak of 8 KiB is;
- s: 20 % of the old value plus 50 ms (host scheduling jitter dominates short timings);
- count: the larger of 1 and 10 %;
- any other unit: 5 %.

A spec string is ``ABS``, ``REL%``, ``ABS,REL%`` (the larger) or ``ABS+REL%`` (the sum); ABS may
carry a unit suffix: B, KiB, MiB, ms, s (``4KiB,2%``, ``50ms+20%``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from hil.errors import ConfigError

_SUFFIX = {"": 1.0, "b": 1.0, "kib": 1024.0, "k": 1024.0, "mib": 1024.0 ** 2, "m": 1024.0 ** 2,
           "ms": 0.001, "s": 1.0}


@dataclass(frozen=True)
class Tolerance:
    abs: float = 0.0
    rel: float = 0.0              # fraction of the old value
    combine: str = "max"          # "max": the larger of the two; "sum": both added

    def allowed(self, old: float) -> float:
        r = self.rel * abs(old)
        return self.abs + r if self.combine == "sum" else max(self.abs, r)

    def describe(self) -> str:
        parts = []
        if self.abs:
            parts.append(f"{self.abs:g}")
        if self.rel:
            parts.append(f"{self.rel * 100:g}%")
        if not parts:
            return "0"
        return ("+" if self.combine == "sum" else ",").join(parts)


DEFAULTS: dict[str, Tolerance] = {
    "bytes": Tolerance(abs=4096, rel=0.02, combine="max"),
    "s": Tolerance(abs=0.05, rel=0.20, combine="sum"),
    "count": Tolerance(abs=1, rel=0.10, combine="max"),
}
FALLBACK = Tolerance(abs=0.0, rel=0.05, combine="max")


def _amount(text: str, spec: str) -> float:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _SUFFIX:
        raise ConfigError(f"tolerance {spec!r}: {text.strip()!r} is not an amount "
                          f"(a number, optionally with B, KiB, MiB, ms or s)")
    return float(m.group(1)) * _SUFFIX[m.group(2).lower()]


def parse_tolerance(spec: str) -> Tolerance:
    """'4096', '2%', '4KiB,2%' (larger of), '50ms+20%' (sum)."""
    text = spec.strip()
    combine = "sum" if "+" in text.replace("e+", "e") else "max"
    parts = [p for p in re.split(r"[,+]", text) if p.strip()] if text else []
    if not parts or len(parts) > 2:
        raise ConfigError(f"tolerance {spec!r}: expected ABS, REL%, ABS,REL% or ABS+REL%")
    absolute, rel = 0.0, 0.0
    seen_abs = seen_rel = False
    for p in parts:
        p = p.strip()
        if p.endswith("%"):
            if seen_rel:
                raise ConfigError(f"tolerance {spec!r}: two percentages")
            rel, seen_rel = _amount(p[:-1], spec) / 100.0, True
        else:
            if seen_abs:
                raise ConfigError(f"tolerance {spec!r}: two absolute amounts")
            absolute, seen_abs = _amount(p, spec), True
    return Tolerance(abs=absolute, rel=rel, combine=combine)


@dataclass(frozen=True)
class Tolerances:
    """Tolerances by measurement name (checked first) and by unit."""
    by_unit: dict[str, Tolerance] = field(default_factory=lambda: dict(DEFAULTS))
    by_name: dict[str, Tolerance] = field(default_factory=dict)

    def for_measurement(self, name: str, unit: str) -> Tolerance:
        return self.by_name.get(name) or self.by_unit.get(unit) or FALLBACK

    @classmethod
    def from_options(cls, items: list[str] | None) -> "Tolerances":
        """From ``KEY=SPEC`` options; KEY is a unit (bytes, s, count, ...) or a measurement name.

        A KEY that is one of the known units, or a unit seen as default, sets the unit tolerance;
        anything else is taken as a measurement name.
        """
        by_unit = dict(DEFAULTS)
        by_name: dict[str, Tolerance] = {}
        for item in items or []:
            key, sep, spec = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--tolerance {item!r}: expected KEY=SPEC, e.g. bytes=4096,2% "
                                  f"or threshold_sd_bytes=8KiB")
            key = key.strip()
            tol = parse_tolerance(spec)
            if key in by_unit or key.startswith("unit:"):
                by_unit[key.removeprefix("unit:")] = tol
            else:
                by_name[key] = tol
        return cls(by_unit=by_unit, by_name=by_name)


# Which way is worse. Words in a measurement name, checked in order; first hit wins.
_LOWER_BETTER = ("leak", "time", "duration", "latency", "probes", "retries", "errors", "lost")
_HIGHER_BETTER = ("threshold", "free", "max", "rate", "speed", "throughput", "largest")


def better_direction(name: str, unit: str, low: float | None, high: float | None) -> int:
    """+1 if a higher value is better, -1 if lower is better, 0 if unknown.

    A one-sided limit says it best (only a floor: higher is better; only a ceiling: lower is
    better); otherwise words in the name decide; otherwise seconds are better lower.
    """
    if low is not None and high is None:
        return +1
    if high is not None and low is None:
        return -1
    words = name.lower()
    for w in _LOWER_BETTER:
        if w in words:
            return -1
    for w in _HIGHER_BETTER:
        if w in words:
            return +1
    if unit == "s":
        return -1
    return 0
