"""The first screen of the trend page: one line per rig and build, worst first, and the story of
each rig that has one (story.py: failures with reasons, firmware, measurements by cause).

Each rig's latest night is compared with the night before on the same rig, or, for a rig with
no earlier night of its own, with the latest earlier run on the same board and firmware family
(matching.previous_for): the line says which.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from html import escape

from hil.report.compare import Comparison, TestChange, compare_runs
from hil.report.grouping import ChangeLine, single_phrase
from hil.report.matching import previous_for
from hil.report.reasons import short_reason, violations
from hil.report.runs import Run
from hil.report.story import GroupStory, Story, story_of

MAX_FAILURES = 25   # a night where everything broke still shows the other rigs' lines


@dataclass(frozen=True)
class RigNight:
    rig: str
    board: str
    runs: tuple[Run, ...]                   # this rig's nights, oldest first
    previous: tuple[Run, str] | None        # what the latest night is compared with
    comparison: Comparison | None
    story: Story | None

    @property
    def latest(self) -> Run:
        return self.runs[-1]

    @property
    def counts(self) -> Counter[str]:
        return Counter(t.outcome for t in self.latest.tests if t.rig == self.rig)

    def severity(self) -> tuple:
        """Sort key, worst first: regressions, then failures, broken tests, a killed run."""
        c = self.comparison
        counts = self.counts
        new_failures = (c.count("new_failure") + c.count("added_failing")) if c else 0
        return (-(c.regressions if c else 0), -new_failures, -counts["failed"],
                -counts["broken"], self.latest.finished, self.rig)


def rig_nights(runs: list[Run], last: int) -> list[RigNight]:
    """Every rig's latest night, compared, worst first."""
    ordered = sorted(runs, key=Run.sort_key)
    out = []
    for rig in sorted({rig for r in ordered for rig in r.rigs}):
        mine = [r for r in ordered if rig in r.rigs][-last:]
        latest = mine[-1]
        earlier = [r for r in ordered if r.sort_key() < latest.sort_key()]
        prev = previous_for(earlier, rig, latest)
        comparison = story = None
        if prev is not None:
            before, prev_rig = prev
            history = [r.only_rig(prev_rig) for r in earlier
                       if prev_rig in r.rigs and r.sort_key() < before.sort_key()]
            comparison = compare_runs(before.only_rig(prev_rig), latest.only_rig(rig),
                                      history=history)
            story = story_of(comparison)
        out.append(RigNight(rig, latest.board_of(rig), tuple(mine), prev, comparison, story))
    out.sort(key=RigNight.severity)
    return out


def _when(run: Run) -> str:
    return run.started.strftime("%m-%d %H:%M") if run.started else run.run_id


def _verdict(n: RigNight) -> tuple[str, str]:
    """(css class, text) of a rig's line."""
    counts = n.counts
    if n.comparison is None:
        bad = counts["failed"] > 0
        return ("bad" if bad else "first"), "first night: nothing earlier to compare with"
    text = n.story.headline if n.story else ""
    if n.comparison.regressions:
        return "bad", text
    if counts["failed"] or counts["broken"] or not n.latest.finished:
        return "warn", text
    return "good", text


def rig_table(nights: list[RigNight], colours: dict[str, str]) -> str:
    rows = []
    for n in nights:
        cls, verdict = _verdict(n)
        profile, version = n.latest.firmware_of(n.rig)
        counts = ", ".join(f"{v} {k}" for k, v in sorted(n.counts.items(),
                                                           key=lambda kv: (kv[0] != "failed", kv[0])))
        killed = ' <b class="killed">killed</b>' if not n.latest.finished else ""
        against = ""
        if n.previous is not None:
            before, prev_rig = n.previous
            how = "" if prev_rig == n.rig else f" {prev_rig}'s run (same board and firmware family)"
            against = f"vs{how or ''} {_when(before)}"
        rows.append(
            f'<tr class="{cls}"><td><i class="dot" style="background:{colours[n.rig]}"></i>'
            f'<a href="#rig-{escape(n.rig)}"><b>{escape(n.rig)}</b></a>'
            f'{" (" + escape(n.board) + ")" if n.board else ""}</td>'
            f'<td>{escape(profile)} {escape(version)}</td>'
            f'<td>{escape(_when(n.latest))}{killed}</td><td>{escape(counts)}</td>'
            f'<td class="verdict"><b>{escape(verdict)}</b> <span class="meta">'
            f'{escape(against)}</span></td></tr>')
    head = ("<tr><th>rig (board)</th><th>build</th><th>latest night (UTC)</th>"
            "<th>outcomes</th><th>against the night before</th></tr>")
    return f'<table class="rigs">{head}{"".join(rows)}</table>'


def _failure(t: TestChange) -> str:
    band = "".join(f'<div class="band">band: {escape(v.phrase)}</div>' for v in t.violations)
    full = escape(" ".join(t.message.split())) if t.message else "no message recorded"
    added = " (added test)" if t.kind == "added_failing" else ""
    return (f'<li><details><summary><code>{escape(t.nodeid.removeprefix("suites/"))}</code>'
            f'{added} <span class="reason">{escape(t.reason)}</span></summary>'
            f'<div class="full">{full}</div></details>{band}</li>')


def _change(line: ChangeLine) -> str:
    if not line.grouped:
        m = line.members[0]
        return (f'<li>{escape(line.phrase)} <span class="meta">'
                f'{escape(m.nodeid.removeprefix("suites/"))}</span></li>')
    items = "".join(f'<li>{escape(single_phrase(m))} <span class="meta">'
                    f'{escape(m.nodeid.removeprefix("suites/"))}</span></li>'
                    for m in line.members)
    return (f'<li><details><summary>{escape(line.phrase)}</summary><ul class="members">'
            f'{items}</ul></details></li>')


def _group(g: GroupStory, several: bool) -> str:
    parts = []
    if several:
        parts.append(f'<h3>{escape(g.label)} (vs {escape(g.group.old_label)})</h3>')
    if g.failures:
        more = len(g.failures) - MAX_FAILURES
        tail = (f'<p class="also">... and {more} more new failures: see the grid of '
                f'<a href="#rig-{escape(g.rig)}">{escape(g.rig)}</a>.</p>' if more > 0 else "")
        parts.append(f'<h3 class="fails">New failures ({len(g.failures)})</h3>'
                     f'<ol class="failures">'
                     f'{"".join(_failure(t) for t in g.failures[:MAX_FAILURES])}</ol>{tail}')
    if g.group.firmware_change:
        parts.append(f'<p class="fw"><b>Firmware changed:</b> '
                     f'{escape(g.group.firmware_change)}</p>')
    if g.worse:
        beside = f", {g.beside} beside the failures above" if g.beside else ""
        parts.append(f'<h3>Measurements worse past tolerance ({g.worse_count}{beside})</h3>'
                     f'<ul class="changes">{"".join(_change(x) for x in g.worse)}</ul>')
    elif g.beside:
        parts.append(f'<p class="also"><b>Measurements worse past tolerance ({g.beside})</b>: '
                     f'all named beside the failures above.</p>')
    rest = [(k, w) for k, w in (("still_failing", "still failing"), ("broken", "broken"),
                                ("flaky", "flaky"), ("fixed", "fixed"),
                                ("not_reached", "not reached"), ("gone", "gone"),
                                ("added", "added"))
            if g.group.of(k)]
    if rest:
        also = "; ".join(f"{len(g.group.of(k))} {w}" for k, w in rest)
        items = "".join(
            f'<li>{escape(w)}: <code>{escape(t.nodeid.removeprefix("suites/"))}</code> '
            f'<span class="meta">{escape(t.reason or " ".join(t.message.split())[:160])}</span></li>'
            for k, w in rest for t in g.group.of(k)[:MAX_FAILURES])
        parts.append(f'<details class="also"><summary>Also: {escape(also)}</summary>'
                     f'<ul class="members">{items}</ul></details>')
    return "".join(parts)


def _first_night(n: RigNight) -> str:
    """A rig with nothing earlier to compare with: its failures, with their reasons, still."""
    failed = [t for t in n.latest.tests if t.rig == n.rig and t.failed]
    if not failed:
        return ""
    items = []
    for t in sorted(failed, key=lambda t: t.nodeid)[:MAX_FAILURES]:
        found = violations(t)
        items.append(_failure(TestChange("failed", t.nodeid, t.rig, None, t.outcome, t.message,
                                         reason=short_reason(t.message, found),
                                         violations=found)))
    return (f'<section class="story warn" id="story-{escape(n.rig)}"><h2>{escape(n.rig)}: '
            f'first night, {len(failed)} failing</h2><h3 class="fails">Failures '
            f'({len(failed)})</h3><ol class="failures">{"".join(items)}</ol>'
            f'<div class="cmp">Nothing earlier on this rig or on the same board and firmware '
            f'family to compare with.</div></section>')


def story_html(n: RigNight) -> str:
    """One rig's story block; empty when its night has nothing to tell."""
    s = n.story
    if s is None:
        return _first_night(n)
    if not any(g.has_news or g.group.tests for g in s.groups):
        return ""
    cls = "bad" if s.regression else "warn"
    groups = [g for g in s.groups if g.has_news or g.group.tests]
    body = "".join(_group(g, len(groups) > 1) for g in groups)
    compared = "".join(f"<div>Compared {escape(p)}.</div>" for p in s.pairings)
    return (f'<section class="story {cls}" id="story-{escape(n.rig)}"><h2>{escape(n.rig)}: '
            f'{escape(s.headline)}</h2>{body}<div class="cmp">{compared}</div></section>')
