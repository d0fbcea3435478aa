"""A Comparison as Markdown: short enough for a CI job summary, readable as plain text."""
from __future__ import annotations

from hil.report.compare import Comparison, Group, TestChange, human_amount, summarize

# Section order and titles; regressions first, information last.
_SECTIONS = (
    ("new_failure", "New failures"),
    ("added_failing", "Added tests that fail"),
    ("fixed", "Fixed"),
    ("still_failing", "Still failing"),
    ("flaky", "Flaky"),
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
    if t.message:
        text += f": {_one_line(t.message)}"
    return text


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_ITEMS:
        return lines
    return lines[:_MAX_ITEMS] + [f"- ... and {len(lines) - _MAX_ITEMS} more (see --json)"]


def _group(g: Group) -> list[str]:
    # A firmware change on the same rig is its own line; other pairings name the old side.
    same = g.old_label == g.label or g.firmware_change
    title = g.label if same else f"{g.label} (vs {g.old_label})"
    out = [f"### {title}"]
    if g.firmware_change:
        out.append(f"Firmware changed: {g.firmware_change}")
    out.append("")
    for kind, heading in _SECTIONS:
        items = g.of(kind)
        if items:
            note = ": failures came back after a pass, not counted" if kind == "flaky" else ""
            out.append(f"**{heading} ({len(items)})**{note}")
            out.extend(_capped([_test_line(t) for t in items]))
            out.append("")
    worse = [m for m in g.measurements if m.regression]
    other = [m for m in g.measurements if not m.regression]
    if worse:
        out.append(f"**Measurements worse past tolerance ({len(worse)})**")
        for m in worse:
            out.append(f"- {m.phrase}; tolerance {human_amount(m.allowed, m.unit)} "
                       f"[`{m.nodeid}`]")
        out.append("")
    if other:
        out.append(f"**Measurements changed past tolerance, not worse ({len(other)})**")
        for m in other:
            why = "better" if m.direction else "direction unknown"
            out.append(f"- {m.phrase}; {why}; tolerance {human_amount(m.allowed, m.unit)} "
                       f"[`{m.nodeid}`]")
        out.append("")
    broken = g.of("broken")
    if broken:
        out.append(f"**Broken: infrastructure errors, not blamed on the firmware ({len(broken)})**")
        out.extend(_capped([_test_line(t) for t in broken]))
        out.append("")
    if len(out) == 2 or (len(out) == 3 and g.firmware_change):
        out.append("No changes.")
        out.append("")
    return out


def render_markdown(c: Comparison) -> str:
    lines = ["## HIL night-vs-night comparison", ""]
    lines.append(f"**{summarize(c)}**")
    lines.append("")
    lines.append(f"- OLD: {', '.join(c.old)}")
    lines.append(f"- NEW: {', '.join(c.new)}")
    match = {"rig": "rig and test", "firmware": "firmware profile and test",
             "test": "test only (across rigs and firmware)"}[c.match_by]
    extra = f"; flaky checked over {c.history_runs} older night(s)" if c.history_runs else ""
    lines.append(f"- matched by {match}{extra}")
    lines.append("")
    changed = [g for g in c.groups if g.tests or g.measurements]
    for g in changed:
        lines.extend(_group(g))
    if not changed:
        lines.append("Nothing changed.")
        lines.append("")
    if c.notes:
        lines.append("**Notes on the records**")
        lines.extend(f"- {' '.join(n.split())}" for n in c.notes)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
