"""Measurement changes that moved together, as one line.

A firmware change often moves many readings by one cause: the boot heap shrinks 256 KiB, and
every "free heap before/after loading X" reading in every test falls by about that much. Thirty
lines restating one drop hide the story, so changes are grouped by this rule:

Two changes belong to one group when they have
  1. the same unit,
  2. the same sign of change (both rose or both fell),
  3. the same verdict (both worse past tolerance, or both not),
  4. the same name family: the first FAMILY_WORDS words of the name (split on "_"), after
     dropping a trailing unit word ("sys_heap_free_before_sd_v3_min_bytes" -> "sys_heap"),
  5. a similar amount: sorted by size, a group takes the next change while its amount is at
     most SIMILAR_RATIO times the group's smallest (256 and 368 KiB: one group; 576 KiB: not).
A group of at least MIN_GROUP changes is one line; the rest stay single lines.

The line names the group by the common start of its members' names ("sys_heap_free_*"), the
range of the change, and the reading most of them moved by, as the likely cause ("most by 256
KiB: sys_heap_free_bytes 2252800 -> 1990656").
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from hil.report.changes import MeasurementChange
from hil.report.phrases import (human_amount, human_range, human_value, limits_text,
                                 measurement_phrase)

SIMILAR_RATIO = 1.5
MIN_GROUP = 2
FAMILY_WORDS = 2
UNIT_WORDS = frozenset({"bytes", "b", "kib", "mib", "s", "ms", "us", "ns", "count", "pct",
                        "percent", "hz"})


@dataclass(frozen=True)
class ChangeLine:
    """One line of the measurement story: a group of changes, or a single one."""
    members: tuple[MeasurementChange, ...]
    phrase: str

    @property
    def grouped(self) -> bool:
        return len(self.members) > 1

    @property
    def regression(self) -> bool:
        return any(m.regression for m in self.members)

    @property
    def tests(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.nodeid for m in self.members))


def family(name: str) -> str:
    """The name family of a measurement (rule 4)."""
    words = [w for w in name.split("_") if w]
    if len(words) > 1 and words[-1].lower() in UNIT_WORDS:
        words = words[:-1]
    return "_".join(words[:FAMILY_WORDS]).lower()


def _sign(m: MeasurementChange) -> int:
    return (m.delta > 0) - (m.delta < 0)


def group_changes(changes: Sequence[MeasurementChange]) -> list[ChangeLine]:
    """The changes as lines: groups first (largest first), then single changes, largest
    relative change first. Every change is in exactly one line."""
    buckets: dict[tuple, list[MeasurementChange]] = {}
    for m in changes:
        key = (m.unit, _sign(m), m.regression, family(m.name))
        buckets.setdefault(key, []).append(m)
    groups: list[ChangeLine] = []
    singles: list[MeasurementChange] = []
    for members in buckets.values():
        for cluster in _clusters(members):
            if len(cluster) >= MIN_GROUP:
                groups.append(ChangeLine(tuple(cluster), group_phrase(cluster)))
            else:
                singles.extend(cluster)
    groups.sort(key=lambda g: (-len(g.members), g.phrase))
    singles.sort(key=lambda m: -_relative(m))
    return groups + [ChangeLine((m,), single_phrase(m)) for m in singles]


def _clusters(members: list[MeasurementChange]) -> list[list[MeasurementChange]]:
    """Rule 5: split one bucket into runs of similar amounts."""
    ordered = sorted(members, key=lambda m: (abs(m.delta), m.nodeid, m.name))
    out: list[list[MeasurementChange]] = []
    for m in ordered:
        if out and abs(m.delta) <= SIMILAR_RATIO * abs(out[-1][0].delta):
            out[-1].append(m)
        else:
            out.append([m])
    return out


def _relative(m: MeasurementChange) -> float:
    return abs(m.delta) / abs(m.old) if m.old else float("inf")


def _common_name(names: list[str]) -> str:
    """'sys_heap_free_*' for names sharing 'sys_heap_free_'; the name itself when all equal."""
    if len(set(names)) == 1:
        return names[0]
    split = [n.split("_") for n in names]
    common: list[str] = []
    for words in zip(*split):
        if len(set(words)) != 1:
            break
        common.append(words[0])
    return ("_".join(common) + "_*") if common else "related"


def group_phrase(members: list[MeasurementChange]) -> str:
    """'28 sys_heap_free_* readings in 15 tests fell 256-368 KiB (most by 256 KiB:
    sys_heap_free_bytes 2252800 -> 1990656)'."""
    unit = members[0].unit
    verb = "rose" if members[0].delta > 0 else "fell"
    tests = len({m.nodeid for m in members})
    where = f" in {tests} tests" if tests > 1 else ""
    amounts = [abs(m.delta) for m in members]
    size = human_range(min(amounts), max(amounts), unit)
    counts = Counter(amounts)
    top, n = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
    cause = min((m for m in members if abs(m.delta) == top), key=lambda m: (len(m.name), m.name))
    example = (f"{cause.name} {human_value(cause.old, unit)} -> {human_value(cause.new, unit)}"
               + (" s" if unit == "s" else ""))
    lead = f"most by {human_amount(top, unit)}: " if n > 1 and len(counts) > 1 else \
        ("all by the same amount: " if len(counts) == 1 else "e.g. ")
    return (f"{len(members)} {_common_name([m.name for m in members])} readings{where} "
            f"{verb} {size} ({lead}{example})")


def single_phrase(m: MeasurementChange) -> str:
    """One change without the rig label (the section says which rigs)."""
    text = measurement_phrase(m.name, "", m.old, m.new, m.unit)
    if m.out_of_limits and m.regression:
        lo, hi = m.limits
        text += f", outside its limits {limits_text(lo, hi, m.unit)}"
    return text
