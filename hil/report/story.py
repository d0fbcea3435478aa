"""The story of one comparison, in the order a team lead reads it.

1. the new failures, each with its one-line reason and the band violations that explain it;
2. what changed in the firmware;
3. the measurements, grouped by cause (grouping.py); the band violations already named beside
   a failure are not repeated;
4. what was compared with what.
Markdown (markdown.py) and the page (html_summary.py) both render this, so they say the same.
"""
from __future__ import annotations

from dataclasses import dataclass

from hil.report.changes import FAILING_KINDS, Comparison, Group, TestChange, summarize
from hil.report.grouping import ChangeLine, group_changes

TOP_KINDS = ("new_failure", "added_failing")


@dataclass(frozen=True)
class GroupStory:
    group: Group
    failures: tuple[TestChange, ...]       # new failures and added tests that fail
    worse: tuple[ChangeLine, ...]          # measurement lines worse past tolerance
    other: tuple[ChangeLine, ...]          # changed past tolerance, not worse
    beside: int                            # worse changes named beside a failure instead

    @property
    def label(self) -> str:
        return self.group.label

    @property
    def rig(self) -> str:
        return self.group.label.split("/", 1)[0]

    @property
    def worse_count(self) -> int:
        return sum(len(line.members) for line in self.worse) + self.beside

    @property
    def has_news(self) -> bool:
        return bool(self.failures or self.worse or self.group.firmware_change)


@dataclass(frozen=True)
class Story:
    headline: str
    regression: bool
    groups: tuple[GroupStory, ...]
    pairings: tuple[str, ...]

    @property
    def failures(self) -> list[tuple[GroupStory, TestChange]]:
        return [(g, t) for g in self.groups for t in g.failures]

    @property
    def several(self) -> bool:
        """The comparison spans more than one rig: lines then name their rig."""
        return len(self.groups) > 1


def group_story(g: Group) -> GroupStory:
    explained = {(t.nodeid, v.name) for t in g.tests if t.kind in FAILING_KINDS
                 for v in t.violations}
    worse = [m for m in g.measurements if m.regression and (m.nodeid, m.name) not in explained]
    beside = sum(1 for m in g.measurements if m.regression and (m.nodeid, m.name) in explained)
    other = [m for m in g.measurements if not m.regression]
    failures = tuple(t for kind in TOP_KINDS for t in g.of(kind))
    return GroupStory(g, failures, tuple(group_changes(worse)), tuple(group_changes(other)), beside)


def story_of(c: Comparison) -> Story:
    groups = tuple(sorted((group_story(g) for g in c.groups),
                          key=lambda s: (-s.group.regressions, -len(s.failures), s.label)))
    return Story(summarize(c), bool(c.regressions), groups, c.pairings)


def failure_line(t: TestChange) -> str:
    """'suites/x.py::test_y: the reason' as plain text."""
    return f"{t.nodeid}: {t.reason or t.message or 'failed, no message recorded'}"
