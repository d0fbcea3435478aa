"""What a comparison found: test changes, measurement changes, per-rig groups, the whole
comparison (with its JSON form) and its one-line summary. compare.py finds them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from hil.report.reasons import Violation

FAILING_KINDS = ("new_failure", "added_failing", "still_failing", "flaky")
REGRESSION_KINDS = ("new_failure", "added_failing")


@dataclass(frozen=True)
class TestChange:
    kind: str             # new_failure, fixed, still_failing, flaky, added, added_failing, gone,
                          # not_reached, newly_skipped, broken
    nodeid: str
    label: str            # "rig/firmware" the change is seen on (new side, else old)
    old_outcome: str | None
    new_outcome: str | None
    message: str = ""     # the new (or, for gone/fixed, old) one-line message
    history: str = ""     # outcome letters oldest first, for flaky tests ("PFPFF")
    reason: str = ""      # a failing test's short reason (reasons.py)
    violations: tuple[Violation, ...] = ()   # its measurements outside their limits

    @property
    def regression(self) -> bool:
        return self.kind in REGRESSION_KINDS


@dataclass(frozen=True)
class MeasurementChange:
    nodeid: str
    name: str
    unit: str
    label: str
    old: float
    new: float
    allowed: float        # tolerance, in the measurement's unit
    direction: int        # +1 higher is better, -1 lower is better, 0 unknown
    regression: bool
    limits: tuple[float | None, float | None] = (None, None)
    out_of_limits: bool = False
    phrase: str = ""      # one human sentence

    @property
    def delta(self) -> float:
        return self.new - self.old


@dataclass(frozen=True)
class Group:
    """Changes seen on one rig/firmware (the new side's, with the old side's when it differs)."""
    label: str
    old_label: str
    firmware_change: str          # "v0.6.2-75-g973361c0d -> v0.6.3-4-g1c0ffee" or ""
    tests: tuple[TestChange, ...]
    measurements: tuple[MeasurementChange, ...]
    compared: str = ""            # what was compared with what, one sentence

    def of(self, kind: str) -> list[TestChange]:
        return [t for t in self.tests if t.kind == kind]

    @property
    def regressions(self) -> int:
        return sum(t.regression for t in self.tests) + sum(m.regression for m in self.measurements)


@dataclass(frozen=True)
class Comparison:
    old: tuple[str, ...]          # run labels
    new: tuple[str, ...]
    match_by: str
    groups: tuple[Group, ...]
    notes: tuple[str, ...]
    history_runs: int = 0
    pairings: tuple[str, ...] = ()   # what was compared with what, one sentence per NEW rig

    @property
    def regressions(self) -> int:
        return sum(g.regressions for g in self.groups)

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def count(self, kind: str) -> int:
        return sum(len(g.of(kind)) for g in self.groups)

    def measurement_regressions(self) -> list[MeasurementChange]:
        return [m for g in self.groups for m in g.measurements if m.regression]

    def to_json(self) -> dict[str, Any]:
        kinds = ("new_failure", "added_failing", "fixed", "still_failing", "flaky", "added",
                 "gone", "not_reached", "newly_skipped", "broken")
        return {
            "schema": 1,
            "old": list(self.old), "new": list(self.new), "match_by": self.match_by,
            "history_runs": self.history_runs,
            "regression": bool(self.regressions), "regressions": self.regressions,
            "exit_code": self.exit_code,
            "counts": {k: self.count(k) for k in kinds}
                      | {"measurement_regressions": len(self.measurement_regressions()),
                         "measurement_changes": sum(len(g.measurements) for g in self.groups)},
            "compared": list(self.pairings),
            "groups": [_group_json(g) for g in self.groups],
            "notes": list(self.notes),
        }


def _group_json(g: Group) -> dict[str, Any]:
    d = {"label": g.label, "old_label": g.old_label, "firmware_change": g.firmware_change,
         "compared": g.compared, "regressions": g.regressions, "tests": [], "measurements": []}
    for t in g.tests:
        d["tests"].append(asdict(t) | {"regression": t.regression})
    for m in g.measurements:
        d["measurements"].append(asdict(m) | {"delta": m.delta, "limits": list(m.limits)})
    return d


def summarize(c: Comparison) -> str:
    """One line: 'REGRESSION: 1 new failure, 2 measurements worse; 1 fixed; ...'."""
    parts = []
    counts = Counter({k: c.count(k) for k in ("new_failure", "added_failing", "fixed",
                                              "still_failing", "flaky", "added", "gone",
                                              "not_reached", "newly_skipped", "broken")})
    mreg = len(c.measurement_regressions())
    bad = []
    if counts["new_failure"]:
        bad.append(_n(counts["new_failure"], "new failure"))
    if counts["added_failing"]:
        bad.append(_n(counts["added_failing"], "added test failing", "added tests failing"))
    if mreg:
        bad.append(_n(mreg, "measurement worse past tolerance", "measurements worse past tolerance"))
    head = ("REGRESSION: " + ", ".join(bad)) if bad else "No regression"
    for kind, word in (("fixed", "fixed"), ("still_failing", "still failing"), ("flaky", "flaky"),
                       ("added", "added"), ("gone", "gone"),
                       ("not_reached", "not reached (run killed)"),
                       ("newly_skipped", "newly skipped")):
        if counts[kind]:
            parts.append(f"{counts[kind]} {word}")
    if counts["broken"]:
        parts.append(f"{counts['broken']} broken (infrastructure, not counted)")
    return head + ("; " + "; ".join(parts) if parts else "")


def _n(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"
