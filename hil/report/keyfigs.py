"""Key figures over the nights: one small chart per figure, one line per rig.

The figures a team tracks night over night: the memory threshold from SD and from flash, the
leak per load/deinit cycle, and the suite's wall time. Which measurements those are is a default
(``DEFAULT_KEY_FIGURES``, the names the project's suites record) that ``hil report html
--key-figure NAME`` replaces; when none of them was ever recorded (other suites), the
measurements judged against limits in most runs are taken instead. Nights are the columns (one
per UTC date; a rig's last run of the day counts), so rigs that run the same night line up.
"""
from __future__ import annotations

from collections import Counter
from html import escape

from hil.report.phrases import human_value
from hil.report.runs import Run
from hil.report.svg import Series, axis_text, multi_chart

DEFAULT_KEY_FIGURES = ("threshold_sd_bytes", "threshold_flash_bytes", "leak_per_cycle_bytes")
SUITE_TIME = "suite wall time"
MAX_FALLBACK = 3
# Rig colours: distinct from the outcome colours (green passed, red failed, amber broken).
PALETTE = ("#1f6fb2", "#7b3fb0", "#0f8b8d", "#c15d00", "#5d6b00", "#b0306a", "#4a4a4a",
           "#3f51b5")


def rig_colours(rigs: list[str]) -> dict[str, str]:
    return {rig: PALETTE[i % len(PALETTE)] for i, rig in enumerate(rigs)}


def choose(runs: list[Run], wanted: tuple[str, ...] | None = None) -> list[str]:
    """The measurement names to chart (suite time comes on top of these)."""
    seen: Counter[str] = Counter()
    limited: Counter[str] = Counter()
    for run in runs:
        names = {m.name for t in run.tests for m in t.measurements}
        seen.update(names)
        limited.update({m.name for t in run.tests for m in t.measurements
                        if m.low is not None or m.high is not None})
    if wanted:
        return list(wanted)
    present = [n for n in DEFAULT_KEY_FIGURES if seen[n]]
    if present:
        return present
    ranked = sorted(limited.items(), key=lambda kv: (-kv[1], kv[0]))   # most runs, then by name
    return [n for n, _ in ranked[:MAX_FALLBACK]]


def _day(run: Run) -> str:
    return run.started.strftime("%Y-%m-%d") if run.started else run.run_id[:10]


def _value(run: Run, rig: str, name: str) -> tuple[float | None, bool, str]:
    """The last reading of ``name`` on ``rig`` in ``run``: (value, outside limits, test)."""
    found: tuple[float | None, bool, str] = (None, False, "")
    for t in run.tests:
        if t.rig != rig or t.broken:
            continue
        for m in t.measurements:
            if m.name == name:
                found = (m.value, m.ok is False, t.nodeid)
    return found


def key_charts(runs_by_rig: dict[str, list[Run]], colours: dict[str, str],
               names: list[str], nights: int = 30) -> str:
    """The key-figure charts as HTML (a column of small SVG charts with a rig legend)."""
    days = sorted({_day(r) for runs in runs_by_rig.values() for r in runs})[-nights:]
    labels = [d[5:] for d in days]
    charts: list[str] = []
    for name in names + [SUITE_TIME]:
        unit = "s" if name == SUITE_TIME else ""
        series: list[Series] = []
        for rig, runs in runs_by_rig.items():
            by_day: dict[str, Run] = {}
            for r in sorted(runs, key=Run.sort_key):
                by_day[_day(r)] = r
            values: list[float | None] = []
            bad: list[bool] = []
            tips: list[str] = []
            for d in days:
                run = by_day.get(d)
                v, out, test = (None, False, "")
                if run is not None and name == SUITE_TIME:
                    v = run.wall_s
                elif run is not None:
                    v, out, test = _value(run, rig, name)
                    if v is not None and not unit:
                        unit = next((m.unit for t in run.tests for m in t.measurements
                                     if m.name == name), "")
                values.append(v)
                bad.append(out)
                tips.append("" if v is None else
                            f"{rig} {run.run_id if run else d}: {name} {human_value(v, unit)} "
                            f"{unit}{' (outside its limits)' if out else ''}"
                            + (f" in {test}" if test else ""))
            series.append(Series(rig, colours[rig], tuple(values), tuple(bad), tuple(tips)))
        last = [(s.name, next((v for v in reversed(s.values) if v is not None), None))
                for s in series]
        sub = ", ".join(f"{rig} {axis_text(v, unit)}" for rig, v in last if v is not None)
        chart = multi_chart(name, unit, labels, series, subtitle=_fit(sub))
        if chart:
            charts.append(f'<figure class="kf">{chart}</figure>')
    if not charts:
        return '<p class="meta">No key figures recorded yet.</p>'
    legend = "".join(f'<span><i style="background:{colours[r]}"></i>{escape(r)}</span>'
                     for r in runs_by_rig)
    return (f'<div class="keyfigs"><h2>Key figures over the nights</h2>'
            f'<p class="legend">{legend}<span><i class="ring"></i>outside its limits</span></p>'
            f'{"".join(charts)}</div>')


def _fit(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
