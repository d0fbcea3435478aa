"""A Comparison as Markdown: short enough for a CI job summary, readable as plain text.

It opens with the story (story.py): the new failures with their reasons, what changed in the
firmware, the measurements grouped by cause, what was compared with what. The rest per rig
follows: fixed, still failing, flaky, added, gone, broken, and the members of each grouped line
(in a <details> block, which GitHub folds).
"""
from __future__ import annotations

from hil.report.changes import Comparison, TestChange
from hil.report.grouping import ChangeLine, single_phrase
from hil.report.phrases import human_amount
from hil.report.story import GroupStory, Story, story_of

# Detail sections after the story, per rig; regressions were told already.
_SECTIONS = (
    ("still_failing", "Still failing"),
    ("flaky", "Flaky"),
    ("fixed", "Fixed"),
    ("added", "Added tests"),
    ("gone", "Gone tests"),
    ("not_reached", "Not reached: the NEW run was killed before them"),
    ("newly_skipped", "Newly skipped"),
)
_MAX_MESSAGE = 160
_MAX_ITEMS = 25     # per section: a night where everything broke must still fit a CI summary


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > _MAX_MESSAGE:
        line = line[:_MAX_MESSAGE - 3] + "..."
    return line.replace("|", "\\|")


def _test_line(t: TestChange) -> str:
    parts = [f"- `{t.nodeid}`"]
    if t.old_outcome and t.new_outcome:
        parts.append(f"{t.old_outcome} -> {t.new_outcome}")
    elif t.new_outcome:
        parts.append(t.new_outcome)
    elif t.old_outcome:
        parts.append(f"was {t.old_outcome}")
    if t.history:
        parts.append(f"nights {t.history} (oldest first)")
    text = ": ".join(parts[:2]) + ("".join(f", {p}" for p in parts[2:]))
    why = t.reason or t.message
    if why:
        text += f": {_one_line(why)}"
    return text


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_ITEMS:
        return lines
    return lines[:_MAX_ITEMS] + [f"- ... and {len(lines) - _MAX_ITEMS} more (see --json)"]


def _who(g: GroupStory, story: Story) -> str:
    return f"**{g.rig}**: " if story.several else ""


def _change_line(line: ChangeLine, prefix: str) -> str:
    if line.grouped:
        return f"- {prefix}{line.phrase}; each one below"
    m = line.members[0]
    return f"- {prefix}{line.phrase}; tolerance {human_amount(m.allowed, m.unit)} [`{m.nodeid}`]"


def _story(story: Story) -> list[str]:
    out: list[str] = []
    failures = story.failures
    if failures:
        out.append(f"**New failures ({len(failures)})**")
        for g, t in failures[:_MAX_ITEMS]:
            added = " (added test)" if t.kind == "added_failing" else ""
            out.append(f"- {_who(g, story)}`{t.nodeid}`{added}: {_one_line(t.reason)}")
            for v in t.violations:
                out.append(f"  - band: {v.phrase}")
        if len(failures) > _MAX_ITEMS:
            out.append(f"- ... and {len(failures) - _MAX_ITEMS} more (see --json)")
        out.append("")
    changes = [g for g in story.groups if g.group.firmware_change]
    for g in changes:
        out.append(f"**Firmware changed**: {_who(g, story)}{g.group.firmware_change}")
    if changes:
        out.append("")
    worse = [g for g in story.groups if g.worse or g.beside]
    if worse:
        total = sum(g.worse_count for g in worse)
        beside = sum(g.beside for g in worse)
        lines = sum(len(g.worse) for g in worse)
        if not lines:
            out.append(f"**Measurements worse past tolerance ({total})**: all named beside the "
                       f"failures above")
        else:
            split = (f": {beside} beside the failures above, {total - beside} in {lines} "
                     f"line{'s' if lines != 1 else ''}" if beside else
                     (f" in {lines} line{'s' if lines != 1 else ''}" if lines != total else ""))
            out.append(f"**Measurements worse past tolerance ({total}{split})**")
            for g in worse:
                out.extend(_change_line(line, _who(g, story)) for line in g.worse)
        out.append("")
    if story.pairings:
        if len(story.pairings) == 1:
            out.append(f"**Compared**: {story.pairings[0]}")
        else:
            out.append("**Compared**")
            out.extend(f"- {p}" for p in story.pairings)
        out.append("")
    return out


def _details(line: ChangeLine) -> list[str]:
    out = [f"<details><summary>{line.phrase}</summary>", ""]
    out.extend(f"- {single_phrase(m)} [`{m.nodeid}`]" for m in line.members)
    out += ["", "</details>", ""]
    return out


def _group(g: GroupStory) -> list[str]:
    body: list[str] = []
    for kind, heading in _SECTIONS:
        items = g.group.of(kind)
        if items:
            note = ": failures came back after a pass, not counted" if kind == "flaky" else ""
            body.append(f"**{heading} ({len(items)})**{note}")
            body.extend(_capped([_test_line(t) for t in items]))
            body.append("")
    if g.other:
        count = sum(len(line.members) for line in g.other)
        body.append(f"**Measurements changed past tolerance, not worse ({count})**")
        for line in g.other:
            m = line.members[0]
            why = "better" if m.direction else "direction unknown"
            body.append(_change_line(line, "") if line.grouped else
                        f"- {line.phrase}; {why}; tolerance {human_amount(m.allowed, m.unit)} "
                        f"[`{m.nodeid}`]")
        body.append("")
    broken = g.group.of("broken")
    if broken:
        body.append(f"**Broken: infrastructure errors, not blamed on the firmware ({len(broken)})**")
        body.extend(_capped([_test_line(t) for t in broken]))
        body.append("")
    for line in g.worse + g.other:
        if line.grouped:
            body.extend(_details(line))
    if not body:
        return []
    old = g.group.old_label
    title = g.label if old == g.label else f"{g.label} (vs {old})"
    return [f"### {title}", ""] + body


def render_markdown(c: Comparison) -> str:
    story = story_of(c)
    lines = ["## HIL night-vs-night comparison", "", f"**{story.headline}**", ""]
    lines.extend(_story(story))
    for g in story.groups:
        lines.extend(_group(g))
    if not any(g.group.tests or g.group.measurements for g in story.groups):
        lines.append("No test or measurement changed.")
        lines.append("")
    lines.append(f"OLD: {', '.join(c.old)}; NEW: {', '.join(c.new)}"
                 + (f"; flaky checked over {c.history_runs} older night(s)" if c.history_runs
                    else ""))
    lines.append("")
    if c.notes:
        lines.append("**Notes on the records**")
        lines.extend(f"- {' '.join(n.split())}" for n in c.notes)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
