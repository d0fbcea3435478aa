"""Inline SVG line charts of one measurement over nights, with its limit band. No dependencies.

A chart is a string of SVG markup ready to paste into HTML. Values are drawn per night (x is the
night's column, not wall time, so nights line up with the status grid above them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from hil.report.phrases import human_value

W, H = 460, 210
LEFT, RIGHT, TOP, BOTTOM = 74, 12, 26, 44
OK_COLOUR = "#1f6fb2"
BAD_COLOUR = "#d43c3c"
BAND_COLOUR = "#2e9e44"
BROKEN_COLOUR = "#e8a317"


@dataclass(frozen=True)
class Point:
    x_label: str                 # the night, e.g. "04-26"
    value: float | None          # None: not measured that night
    low: float | None = None
    high: float | None = None
    ok: bool | None = None
    tip: str = ""                # tooltip text
    broken: bool = False         # measured in a test the rig broke: drawn hollow, not trusted


def axis_text(value: float, unit: str) -> str:
    """Short tick label: 2252800 bytes -> '2.15 MiB', 0.05 s -> '50 ms'."""
    v = abs(value)
    sign = "-" if value < 0 else ""
    if unit == "bytes":
        if v >= 1024 ** 2:
            return f"{sign}{v / 1024 ** 2:.3g} MiB"
        if v >= 1024:
            return f"{sign}{v / 1024:.3g} KiB"
        return f"{sign}{v:.3g} B"
    if unit == "s":
        return f"{sign}{v * 1000:.3g} ms" if 0 < v < 1 else f"{sign}{v:.3g} s"
    return f"{value:.4g}"


def _nice_ticks(lo: float, hi: float, unit: str = "", n: int = 4) -> list[float]:
    """Round tick values; bytes tick at round KiB/MiB amounts, not at round decimal ones."""
    span = hi - lo
    if span <= 0:
        return [lo]
    scale = 1.0
    if unit == "bytes":
        scale = 1024.0 ** 2 if span >= 1024 ** 2 / 2 or abs(hi) >= 1024 ** 2 * 4 else \
            (1024.0 if span >= 512 else 1.0)
    return [t * scale for t in _decimal_ticks(lo / scale, hi / scale, n)]


def _decimal_ticks(lo: float, hi: float, n: int) -> list[float]:
    span = hi - lo
    raw = span / n
    if not (math.isfinite(raw) and raw > 0 and math.isfinite(lo)):
        return [lo] if math.isfinite(lo) else []    # extreme values: no round ticks to offer
    mag = 10 ** math.floor(math.log10(raw))
    step = next((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), 0.0)
    if not step > 0:
        return [lo]
    first = math.ceil(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9 and len(ticks) < 12:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _view(points: list[Point]) -> tuple[float, float]:
    """The y range: the data with some air, stretched to show limits that are near the data."""
    values = [p.value for p in points if p.value is not None]
    lo, hi = min(values), max(values)
    pad = max(hi - lo, abs(hi) * 0.05, 1e-9)
    view_lo, view_hi = lo - pad * 0.5, hi + pad * 0.5
    reach_lo, reach_hi = lo - 3 * pad, hi + 3 * pad
    for p in points:
        for limit in (p.low, p.high):
            if limit is not None and reach_lo <= limit <= reach_hi:
                view_lo, view_hi = min(view_lo, limit - pad * 0.2), max(view_hi, limit + pad * 0.2)
    if lo >= 0 and view_lo < 0:
        view_lo = 0.0 if lo - 0 < pad * 3 else view_lo
    return view_lo, view_hi


@dataclass(frozen=True)
class _Frame:
    """A chart's plot area: where columns and values land, and the parts every chart draws."""
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    columns: int
    lo: float
    hi: float
    font: int                    # tick label size; the title is two points larger

    @property
    def pw(self) -> float:
        return self.width - self.left - self.right

    @property
    def ph(self) -> float:
        return self.height - self.top - self.bottom

    @property
    def step(self) -> float:
        return self.pw / max(self.columns, 1)

    def x(self, i: int) -> float:
        return self.left + self.step * (i + 0.5)

    def y(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        span = self.hi - self.lo if self.hi > self.lo else 1
        return self.top + self.ph * (1 - (v - self.lo) / span)

    def head(self, title: str, subtitle: str) -> list[str]:
        w, h, ty = self.width, self.height, self.font + 5
        out = [f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
               f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
               f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
               f'<text x="{self.left}" y="{ty}" font-size="{self.font + 2}" font-weight="bold" '
               f'fill="#222">{escape(title)}</text>']
        if subtitle:
            out.append(f'<text x="{w - self.right}" y="{ty}" font-size="10" fill="#555" '
                       f'text-anchor="end">{escape(subtitle)}</text>')
        return out

    def axes(self, unit: str, ticks: int, labels: list[str], label_every: int) -> list[str]:
        """The y axis with round ticks and grid lines, the x axis with every so many labels."""
        left, top, pw, ph = self.left, self.top, self.pw, self.ph
        out = [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#888"/>',
               f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#888"/>']
        for t in _nice_ticks(self.lo, self.hi, unit, n=ticks):
            ty = self.y(t)
            out.append(f'<line x1="{left - 4}" x2="{left + pw}" y1="{ty:.1f}" y2="{ty:.1f}" '
                       f'stroke="#e8e8e8"/>')
            out.append(f'<text x="{left - 6}" y="{ty + 3:.1f}" font-size="{self.font}" '
                       f'fill="#444" text-anchor="end">{escape(axis_text(t, unit))}</text>')
        every = max(1, math.ceil(self.columns / label_every))
        for i, label in enumerate(labels):
            if i % every == 0 or i == len(labels) - 1:
                out.append(f'<text x="{self.x(i):.1f}" y="{top + ph + 13}" font-size="9" '
                           f'fill="#444" text-anchor="middle">{escape(label)}</text>')
        return out


def line_chart(title: str, unit: str, points: list[Point], subtitle: str = "") -> str:
    """One chart. Points with value None leave a gap in the line."""
    if not any(p.value is not None for p in points):
        return ""
    lo, hi = _view(points)
    f = _Frame(W, H, LEFT, RIGHT, TOP, BOTTOM, len(points), lo, hi, font=10)
    x, y, step = f.x, f.y, f.step
    out = f.head(title, subtitle)
    # Limit band per night: the allowed region in green, each limit as a dashed line.
    for i, p in enumerate(points):
        if p.low is None and p.high is None:
            continue
        top = y(p.high) if p.high is not None else TOP
        bottom = y(p.low) if p.low is not None else TOP + f.ph
        x0 = LEFT + step * i
        out.append(f'<rect x="{x0:.1f}" y="{top:.1f}" width="{step:.1f}" '
                   f'height="{max(bottom - top, 0):.1f}" fill="{BAND_COLOUR}" fill-opacity="0.12"/>')
        for limit in (p.low, p.high):
            if limit is not None and lo <= limit <= hi:
                out.append(f'<line x1="{x0:.1f}" x2="{x0 + step:.1f}" y1="{y(limit):.1f}" '
                           f'y2="{y(limit):.1f}" stroke="{BAND_COLOUR}" stroke-dasharray="4 3"/>')
    out += f.axes(unit, 4, [p.x_label for p in points], label_every=10)
    # The line, broken where a night has no value.
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, p in enumerate(points):
        if p.value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(p.value):.1f}")
    if segment:
        segments.append(segment)
    for seg in segments:
        if len(seg) > 1:
            out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{OK_COLOUR}" '
                       f'stroke-width="1.8"/>')
    for i, p in enumerate(points):
        if p.value is None:
            continue
        tip = p.tip or f"{p.x_label}: {human_value(p.value, unit)} {unit}"
        if p.broken:
            paint = f'fill="#ffffff" stroke="{BROKEN_COLOUR}" stroke-width="2"'
        else:
            paint = f'fill="{BAD_COLOUR if p.ok is False else OK_COLOUR}"'
        out.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3.6" {paint}>'
                   f'<title>{escape(tip)}</title></circle>')
    out.append(f'<text x="{LEFT + f.pw / 2:.1f}" y="{H - 6}" font-size="9" fill="#666" '
               f'text-anchor="middle">night (oldest left); green band = limits; '
               f'red = out of limits; hollow = rig broken</text>')
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Series:
    """One rig's line in a key-figure chart."""
    name: str
    colour: str
    values: tuple[float | None, ...]      # one per column; None: not measured that night
    bad: tuple[bool, ...] = ()            # per column: outside its limits
    tips: tuple[str, ...] = ()


def multi_chart(title: str, unit: str, x_labels: list[str], series: list[Series],
                width: int = 430, height: int = 118, subtitle: str = "") -> str:
    """A compact chart of one figure, one coloured line per rig; out-of-limit points ringed red.
    Empty string when no series has a value."""
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if not values:
        return ""
    lo, hi = _view([Point("", v) for v in values])
    f = _Frame(width, height, 64, 8, 20, 18, max(len(x_labels), 1), lo, hi, font=9)
    x, y, step = f.x, f.y, f.step
    out = f.head(title, subtitle) + f.axes(unit, 3, x_labels, label_every=8)
    # Rigs side by side within a night's column, so equal values on one night stay visible.
    spread = min(step * 0.5, 6.0 * (len(series) - 1))
    for k, s in enumerate(series):
        dx = (k / (len(series) - 1) - 0.5) * spread if len(series) > 1 else 0.0
        segment: list[str] = []
        for i, v in enumerate(list(s.values) + [None]):
            if v is None:
                if len(segment) > 1:
                    out.append(f'<polyline points="{" ".join(segment)}" fill="none" '
                               f'stroke="{s.colour}" stroke-width="1.8"/>')
                segment = []
                continue
            segment.append(f"{x(i) + dx:.1f},{y(v):.1f}")
        for i, v in enumerate(s.values):
            if v is None:
                continue
            bad = i < len(s.bad) and s.bad[i]
            tip = s.tips[i] if i < len(s.tips) and s.tips[i] else \
                f"{s.name} {x_labels[i] if i < len(x_labels) else ''}: {human_value(v, unit)} {unit}"
            ring = f' stroke="{BAD_COLOUR}" stroke-width="2.2"' if bad else ""
            out.append(f'<circle cx="{x(i) + dx:.1f}" cy="{y(v):.1f}" r="{4 if bad else 3.2}" '
                       f'fill="{s.colour}"{ring}><title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)
