"""The trend page: one static, self-contained HTML file over many nights.

No server, no network, no script: inline CSS, inline SVG (svg.py), folding through <details>.
The first screen tells last night's story (html_summary.py, keyfigs.py): one line per rig and
build, worst first; each troubled rig's new failures with their reasons, the firmware change and
the measurements grouped by cause; beside it, the key figures over the nights, one line per rig.
Below, per rig: a status grid (rows = tests, columns = nights, one colour per outcome, broken
apart from failed) and one plot per measurement over the nights with its limit band.
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from hil.report.html_summary import rig_nights, rig_table, story_html
from hil.report.keyfigs import choose, key_charts, rig_colours
from hil.report.phrases import human_value
from hil.report.runs import Run, TestResult
from hil.report.svg import Point, axis_text, line_chart

OUTCOME_STYLE = {  # outcome -> (background, letter, legend text)
    "passed": ("#2e9e44", "P", "passed"),
    "failed": ("#d43c3c", "F", "failed (firmware)"),
    "broken": ("#e8a317", "B", "broken (infrastructure)"),
    "skipped": ("#a7adb4", "S", "skipped"),
    "xfailed": ("#8cc79a", "x", "expected failure"),
    "xpassed": ("#5b8def", "X", "unexpectedly passed"),
}
ABSENT = "#f1f1f1"

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:18px 24px;color:#1b1b1b;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:2px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:16px 0 6px}.meta{color:#555;font-size:12px}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px;border-radius:2px}
table.grid{border-collapse:collapse;font-size:12px;background:#fff}
table.grid th,table.grid td{border:1px solid #e2e2e2;padding:0}
table.grid th.test{text-align:left;font-weight:normal;padding:2px 8px;white-space:nowrap;max-width:440px;overflow:hidden;text-overflow:ellipsis}
table.grid th.night{font-weight:normal;font-size:10px;padding:2px 3px;min-width:38px;color:#333}
table.grid th.night.fw{background:#fff4d6}
td.cell{width:38px;height:20px;text-align:center;color:#fff;font-weight:bold;font-size:11px}
td.cell.none{background:#f1f1f1;color:#bbb;font-weight:normal}
.summary{background:#fff;border:1px solid #ddd;padding:8px 12px;margin:8px 0;border-radius:4px}
.summary.bad{border-color:#d43c3c;background:#fff5f5}.summary.good{border-color:#2e9e44}
.plots{display:flex;flex-wrap:wrap;gap:10px}.plots figure{margin:0;border:1px solid #ddd;background:#fff}
.plots figcaption{font-size:11px;color:#555;padding:2px 6px;max-width:448px;overflow-wrap:anywhere}
.notes{font-size:12px;color:#6b4e00}
table.rigs{border-collapse:collapse;background:#fff;font-size:13px;margin:6px 0 10px;width:100%}
table.rigs th{text-align:left;font-weight:600;font-size:12px;color:#444;border-bottom:2px solid #ddd;padding:3px 8px}
table.rigs td{padding:3px 8px;border-bottom:1px solid #eee;vertical-align:top}
table.rigs tr.bad td{background:#fff1f1}table.rigs tr.bad td.verdict b{color:#b32020}
table.rigs tr.warn td{background:#fff8e6}table.rigs tr.good td.verdict b{color:#1e7a33}
table.rigs a{color:inherit;text-decoration:none}
i.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px}
b.killed{color:#8a5a00}
.top{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}
.stories{flex:1 1 560px;min-width:0}
.story{background:#fff;border:1px solid #ddd;border-left:6px solid #a7adb4;padding:4px 12px 8px;margin:0 0 10px;border-radius:4px}
.story.bad{border-left-color:#d43c3c}.story.warn{border-left-color:#e8a317}
.story h2{font-size:16px;margin:4px 0 4px;border:0;padding:0}
.story h3{font-size:13px;margin:8px 0 2px;color:#333}.story h3.fails{color:#b32020}
ol.failures{margin:2px 0 4px;padding-left:22px}ol.failures li{margin:3px 0}
ol.failures summary{cursor:pointer}ol.failures code{font-size:12px;font-weight:600}
.reason{color:#1b1b1b}.full{font-size:12px;color:#444;margin:2px 0 2px 14px}
.band{font-size:12px;color:#8a2020;margin-left:14px}
ul.changes{margin:2px 0;padding-left:20px;font-size:13px}ul.members{font-size:12px;padding-left:18px}
.fw,.also{margin:6px 0;font-size:13px}.cmp{font-size:12px;color:#555;margin-top:6px}
.keyfigs{flex:0 0 440px}.keyfigs h2{font-size:15px;margin:0 0 2px;border:0}
.keyfigs figure{margin:0 0 4px;border:1px solid #ddd;background:#fff;width:430px}
.legend i.ring{background:#fff;border:2px solid #d43c3c;border-radius:50%;width:8px;height:8px}
"""


def _night_label(run: Run) -> tuple[str, str]:
    if run.started is None:
        return run.run_id[:10], ""
    local = run.started.astimezone(timezone.utc)
    return local.strftime("%m-%d"), local.strftime("%H:%M")


def _short_test(nodeid: str) -> str:
    return nodeid.removeprefix("suites/")


def _cell(t: TestResult | None) -> str:
    if t is None:
        return '<td class="cell none" title="not run">&middot;</td>'
    colour, letter, text = OUTCOME_STYLE.get(t.outcome, ("#555", "?", t.outcome))
    tip = f"{text}, {t.duration:.1f} s" + (f"\n{t.message}" if t.message else "")
    return (f'<td class="cell" style="background:{colour}" title="{escape(tip)}">'
            f'{letter}</td>')


def _grid(rig: str, runs: list[Run]) -> str:
    tests: dict[str, list[TestResult | None]] = {}
    for i, run in enumerate(runs):
        for t in run.tests:
            if t.rig == rig:
                tests.setdefault(t.nodeid, [None] * len(runs))[i] = t
    head = ['<tr><th class="test">test \\ night</th>']
    prev_fw = None
    for run in runs:
        day, clock = _night_label(run)
        profile, version = run.firmware_of(rig)
        changed = prev_fw is not None and (profile, version) != prev_fw
        prev_fw = (profile, version)
        killed = "" if run.finished else "<br>killed"
        tip = f"{run.run_id}\n{profile} {version}" + ("\nfirmware changed" if changed else "")
        cls = "night fw" if changed else "night"
        head.append(f'<th class="{cls}" title="{escape(tip)}">{escape(day)}<br>'
                    f'{escape(clock)}{killed}</th>')
    head.append("</tr>")
    rows = []
    for nodeid in sorted(tests):
        cells = "".join(_cell(t) for t in tests[nodeid])
        rows.append(f'<tr><th class="test" title="{escape(nodeid)}">'
                    f'{escape(_short_test(nodeid))}</th>{cells}</tr>')
    return f'<table class="grid">{"".join(head)}{"".join(rows)}</table>'


def _plots(rig: str, runs: list[Run]) -> str:
    series: dict[tuple[str, str], list[Point | None]] = {}
    units: dict[tuple[str, str], str] = {}
    for i, run in enumerate(runs):
        day, _ = _night_label(run)
        for t in run.tests:
            if t.rig != rig:
                continue
            for m in t.measurements:
                key = (m.name, t.nodeid)
                units[key] = m.unit
                tip = (f"{day} {run.run_id}: {m.value:g} {m.unit} ({t.outcome})"
                       + (f", limits [{m.low if m.low is not None else '-inf'}, "
                          f"{m.high if m.high is not None else '+inf'}]"
                          if m.low is not None or m.high is not None else ""))
                series.setdefault(key, [None] * len(runs))[i] = Point(
                    day, m.value, m.low, m.high, m.ok, tip, broken=t.outcome == "broken")
    figures = []
    for (name, nodeid) in sorted(series):
        unit = units[(name, nodeid)]
        pts = [p if p is not None else Point(_night_label(runs[i])[0], None)
               for i, p in enumerate(series[(name, nodeid)])]
        last = next((p for p in reversed(pts) if p.value is not None), None)
        subtitle = ""
        if last is not None:
            subtitle = f"last {axis_text(last.value, unit)}"
            if unit == "bytes" and abs(last.value) >= 1024:
                subtitle += f" ({human_value(last.value, unit)})"
        chart = line_chart(name, unit, pts, subtitle)
        if chart:
            figures.append(f"<figure>{chart}<figcaption>{escape(_short_test(nodeid))} "
                           f"({escape(unit)})</figcaption></figure>")
    if not figures:
        return "<p class=meta>No measurements recorded on this rig.</p>"
    return f'<div class="plots">{"".join(figures)}</div>'


def render_html(runs: list[Run], *, title: str = "K210 HIL nightly", last: int = 30,
                notes: list[str] | None = None, key_figures: tuple[str, ...] | None = None) -> str:
    """The whole page. ``runs`` in any order; the last ``last`` runs per rig are shown."""
    ordered = sorted(runs, key=Run.sort_key)
    nights = rig_nights(ordered, last)
    colours = rig_colours([n.rig for n in nights])
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    legend = "".join(f'<span><i style="background:{c}"></i>{escape(text)}</span>'
                     for c, _, text in OUTCOME_STYLE.values())
    legend += f'<span><i style="background:{ABSENT}"></i>not run</span>'
    stories = "".join(story_html(n) for n in nights)
    if not stories:
        stories = '<p class="meta">Nothing to tell: no rig regressed or failed.</p>'
    charts = key_charts({n.rig: list(n.runs) for n in nights}, colours,
                        choose(ordered, key_figures), nights=last)
    body = [f"<h1>{escape(title)}</h1>",
            f'<div class="meta">{len(ordered)} runs, {len(nights)} rig(s), worst first; '
            f'generated {generated}.</div>',
            rig_table(nights, colours),
            f'<div class="top"><div class="stories">{stories}</div>{charts}</div>',
            '<h2>Every rig, night by night</h2>',
            '<div class="meta">Columns are nights, oldest left; a shaded night header means the '
            'firmware changed. Hover a cell or point for details.</div>',
            f'<p class="legend">{legend}</p>']
    for n in nights:
        rig, rig_runs = n.rig, list(n.runs)
        body.append(f'<h2 id="rig-{escape(rig)}">Rig {escape(rig)}'
                    f'{" &mdash; " + escape(n.board) if n.board else ""}</h2>')
        body.append("<h3>Outcomes</h3>")
        body.append(_grid(rig, rig_runs))
        body.append("<h3>Measurements over the nights</h3>")
        body.append(_plots(rig, rig_runs))
    all_notes = list(notes or []) + [n for r in ordered for n in r.notes]
    if all_notes:
        body.append("<h2>Notes on the records</h2><ul class=notes>"
                    + "".join(f"<li>{escape(n)}</li>" for n in all_notes) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")
