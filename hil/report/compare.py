"""Night-versus-night comparison of run records: what changed, and is it a regression.

Tests are matched between OLD and NEW by a key chosen with ``match_by``:
- "rig" (default, a nightly): (rig, nodeid). The firmware may change between the nights; that is
  what a nightly tests, and the report says so.
- "firmware": (firmware profile, nodeid): the same build on different rigs.
- "test": nodeid alone: any rig and firmware against any other (sim against sim-regressed).
  Each side must then hold each test once; a side with the same test on two rigs is bad input.

Categories (each test in at most one):
- new failure: failed now, did not fail before (passed, skipped or broken before) -> regression
- fixed: failed before, passes now
- still failing: failed both times (known, not a new regression)
- flaky: over the last ``flaky_window`` nights (history, OLD, NEW) the test failed, passed, and
  failed again (two separate spells of failure); it is listed as flaky whatever its outcome now,
  and its failure does not count as a regression
- added / gone: in one side only; an added test that fails counts as a regression
- not reached: absent from a NEW run that was killed (no footer): not called gone
- newly skipped: ran before, skipped now (worth a look, not a regression)
- broken: an infrastructure error now (the rig, not the firmware): reported apart, never a
  regression, and its measurements are not compared
Measurements of tests present on both sides are compared with their tolerance (tolerance.py);
a change past it in the worse direction, or a value newly outside its limits, is a regression; a
change past it in the better or an unknown direction is listed but is not a regression.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from hil.errors import ConfigError
from hil.report.runs import Measurement, Run, TestResult, same_run, unique_runs
from hil.report.tolerance import Tolerances, better_direction
from hil.units import amount, value as units_value

MATCH_BY = ("rig", "firmware", "test")
REGRESSION_KINDS = ("new_failure", "added_failing")
DEFAULT_FLAKY_WINDOW = 5


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
            "groups": [_group_json(g) for g in self.groups],
            "notes": list(self.notes),
        }


def _group_json(g: Group) -> dict[str, Any]:
    d = {"label": g.label, "old_label": g.old_label, "firmware_change": g.firmware_change,
         "regressions": g.regressions, "tests": [], "measurements": []}
    for t in g.tests:
        d["tests"].append(asdict(t) | {"regression": t.regression})
    for m in g.measurements:
        d["measurements"].append(asdict(m) | {"delta": m.delta, "limits": list(m.limits)})
    return d


# ---------------------------------------------------------------- matching

def _key(t: TestResult, match_by: str) -> tuple[str, str]:
    if match_by == "rig":
        return t.rig, t.nodeid
    if match_by == "firmware":
        return t.firmware_profile, t.nodeid
    return "", t.nodeid


def label_of(t: TestResult) -> str:
    return f"{t.rig}/{t.firmware_profile}"


def _side(runs: list[Run], match_by: str, name: str) -> dict[tuple[str, str], TestResult]:
    """Tests of one side by key; later runs win over earlier ones for the same key."""
    out: dict[tuple[str, str], TestResult] = {}
    for run in sorted(runs, key=Run.sort_key):
        seen_here: dict[tuple[str, str], TestResult] = {}
        for t in run.tests:
            k = _key(t, match_by)
            if k in seen_here:
                other = seen_here[k]
                raise ConfigError(
                    f"{name} {run.path}: {t.nodeid} ran on {label_of(other)} and on {label_of(t)}; "
                    f"--match-by {match_by} needs each test once per side (try --match-by rig)")
            seen_here[k] = t
        out.update(seen_here)
    return out


def _letter(outcome: str) -> str:
    return {"passed": "P", "failed": "F", "broken": "B", "skipped": "S",
            "xfailed": "x", "xpassed": "X"}.get(outcome, "?")


def failure_spells(outcomes: Iterable[str]) -> int:
    """How many separate spells of failure a sequence of outcomes has (broken and skipped nights
    ignored): P F F P -> 1 (broke, then fixed), P F P F -> 2, F P F -> 2.

    A test is flaky when its failures come back after a pass within the window: two spells or
    more. One spell is an ordinary break (and, if it ended, a fix).
    """
    states = [o == "failed" for o in outcomes if o == "failed" or o in ("passed", "xfailed", "xpassed")]
    return sum(1 for i, s in enumerate(states) if s and (i == 0 or not states[i - 1]))


# ---------------------------------------------------------------- phrasing

def human_amount(value: float, unit: str) -> str:
    """An amount for a sentence: 184320 bytes -> '180 KiB', 0.42 s -> '420 ms' (hil.units)."""
    return amount(value, unit)


def human_value(value: float, unit: str) -> str:
    return units_value(value, unit)


def measurement_phrase(name: str, where: str, old: float, new: float, unit: str) -> str:
    """'threshold_sd_bytes on sim/maixpy-v0.6.2-full fell 180 KiB (2252800 -> 2068480)'."""
    verb = "rose" if new > old else "fell"
    text = (f"{name} on {where} {verb} {human_amount(new - old, unit)} "
            f"({human_value(old, unit)} -> {human_value(new, unit)})")
    if unit == "s":
        text = text[:-1] + " s)"
    return text


# ---------------------------------------------------------------- comparison

@dataclass
class _Builder:
    tests: list[TestChange] = field(default_factory=list)
    measurements: list[MeasurementChange] = field(default_factory=list)


def compare_runs(old: Run | list[Run], new: Run | list[Run], *, history: list[Run] | None = None,
                 match_by: str = "rig", tolerances: Tolerances | None = None,
                 flaky_window: int = DEFAULT_FLAKY_WINDOW) -> Comparison:
    """Compare two sides (each one run or several merged) and classify every difference."""
    if match_by not in MATCH_BY:
        raise ConfigError(f"--match-by {match_by!r}: must be one of {', '.join(MATCH_BY)}")
    if flaky_window < 2:
        raise ConfigError(f"--flaky-window {flaky_window}: must be at least 2")
    old_runs = [old] if isinstance(old, Run) else list(old)
    new_runs = [new] if isinstance(new, Run) else list(new)
    tols = tolerances or Tolerances()
    olds = _side(old_runs, match_by, "OLD")
    news = _side(new_runs, match_by, "NEW")

    # Timeline for flaky detection: history, then OLD, then NEW, each run once, oldest first.
    hist = unique_runs(list(history or []) + old_runs)
    hist = [r for r in hist if not any(same_run(r, n) for n in new_runs)]
    timeline: dict[tuple[str, str], list[str]] = {}
    for run in hist:
        for t in run.tests:
            timeline.setdefault(_key(t, match_by), []).append(t.outcome)

    notes: list[str] = []
    for r in unique_runs(old_runs + new_runs):
        notes.extend(r.notes)

    new_fw = _firmware_by_rig(new_runs)
    unfinished = {rig for r in new_runs if not r.finished for rig in r.rigs}
    old_fw = _firmware_by_rig(old_runs)
    groups: dict[tuple[str, str], _Builder] = {}

    def group(key_t: TestResult | None, other: TestResult | None) -> _Builder:
        new_label = label_of(key_t) if key_t else "?"
        old_label = label_of(other) if other else new_label
        return groups.setdefault((new_label, old_label), _Builder())

    for k in sorted(set(olds) | set(news), key=lambda k: (k[0], k[1])):
        o, n = olds.get(k), news.get(k)
        # A gone test is filed under the rig/firmware its rig has now, when the rig still ran.
        if n is None:
            assert o is not None
            fw = new_fw.get(o.rig) if match_by == "rig" else None
            new_label = f"{o.rig}/{fw}" if fw else label_of(o)
            b = groups.setdefault((new_label, label_of(o)), _Builder())
            cut = o.rig in unfinished if match_by == "rig" else bool(unfinished)
            b.tests.append(TestChange("not_reached" if cut else "gone", o.nodeid, label_of(o),
                                      o.outcome, None, o.message))
            continue
        if o is None:
            fw = old_fw.get(n.rig) if match_by == "rig" else None
            old_label = f"{n.rig}/{fw}" if fw else label_of(n)
            b = groups.setdefault((label_of(n), old_label), _Builder())
            kind = "added_failing" if n.failed else "added"
            b.tests.append(TestChange(kind, n.nodeid, label_of(n), None, n.outcome, n.message))
            continue
        b = group(n, o)
        seq = (timeline.get(k, []) + [n.outcome])[-flaky_window:]
        change = _classify(o, n, seq)
        if change is not None:
            b.tests.append(change)
        if not (o.broken or n.broken):
            b.measurements.extend(_measurements(o, n, tols, match_by))

    out_groups = []
    for (new_label, old_label), b in sorted(groups.items()):
        rig = new_label.split("/", 1)[0]
        fw_change = ""
        if match_by == "rig":
            fw_change = firmware_change(_versions(old_runs, rig), _versions(new_runs, rig))
        out_groups.append(Group(label=new_label, old_label=old_label, firmware_change=fw_change,
                                tests=tuple(b.tests), measurements=tuple(b.measurements)))
    return Comparison(old=tuple(r.label for r in old_runs), new=tuple(r.label for r in new_runs),
                      match_by=match_by, groups=tuple(out_groups), notes=tuple(notes),
                      history_runs=len([r for r in hist
                                        if not any(same_run(r, o) for o in old_runs)]))


def _firmware_by_rig(runs: list[Run]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in runs:
        for rig in r.rigs:
            profile, _ = r.firmware_of(rig)
            if profile:
                out[rig] = profile
    return out


def _versions(runs: list[Run], rig: str) -> tuple[str, str] | None:
    for r in runs:
        if rig in r.rigs:
            return r.firmware_of(rig)
    return None


def firmware_change(before: tuple[str, str] | None, after: tuple[str, str] | None) -> str:
    """'maixpy-v0.6.2-full: v0.6.2-75 -> v0.6.2-80', or '' when nothing changed or unknown."""
    if not before or not after or before == after:
        return ""
    if before[0] == after[0]:
        return f"{after[0]}: {before[1] or '?'} -> {after[1] or '?'}"
    return f"{' '.join(before).strip()} -> {' '.join(after).strip()}"


def _classify(o: TestResult, n: TestResult, seq: list[str]) -> TestChange | None:
    label = label_of(n)
    if n.broken:
        return TestChange("broken", n.nodeid, label, o.outcome, n.outcome, n.message)
    if failure_spells(seq) >= 2:
        return TestChange("flaky", n.nodeid, label, o.outcome, n.outcome, n.message,
                          "".join(_letter(s) for s in seq))
    if n.failed and o.failed:
        return TestChange("still_failing", n.nodeid, label, o.outcome, n.outcome, n.message)
    if n.failed:
        return TestChange("new_failure", n.nodeid, label, o.outcome, n.outcome, n.message)
    if o.failed and n.ok:
        return TestChange("fixed", n.nodeid, label, o.outcome, n.outcome, o.message)
    if n.outcome == "skipped" and o.outcome != "skipped":
        return TestChange("newly_skipped", n.nodeid, label, o.outcome, n.outcome, n.message)
    return None


def _by_name(ms: tuple[Measurement, ...]) -> dict[str, Measurement]:
    # A name recorded twice in one test keeps its last value (the final, settled reading).
    return {m.name: m for m in ms}


def _measurements(o: TestResult, n: TestResult, tols: Tolerances,
                  match_by: str) -> list[MeasurementChange]:
    out = []
    old_ms = _by_name(o.measurements)
    # Same rig, new firmware (a nightly): the group already says the firmware changed.
    same = label_of(n) == label_of(o) or (match_by == "rig" and n.rig == o.rig)
    label = label_of(n) if same else f"{label_of(n)} (vs {label_of(o)})"
    for name, nm in _by_name(n.measurements).items():
        om = old_ms.get(name)
        if om is None:
            continue
        unit = nm.unit or om.unit
        tol = tols.for_measurement(name, unit)
        allowed = tol.allowed(om.value)
        delta = nm.value - om.value
        direction = better_direction(name, unit, nm.low, nm.high)
        past = abs(delta) > allowed
        worse = direction != 0 and delta * direction < 0
        newly_out = nm.ok is False and om.ok is not False
        if not (past or newly_out):
            continue
        regression = (past and worse) or newly_out
        phrase = measurement_phrase(name, label, om.value, nm.value, unit)
        if newly_out:
            phrase += f", now outside its limits {_limits(nm)}"
        out.append(MeasurementChange(
            nodeid=n.nodeid, name=name, unit=unit, label=label, old=om.value, new=nm.value,
            allowed=allowed, direction=direction, regression=regression,
            limits=(nm.low, nm.high), out_of_limits=nm.ok is False, phrase=phrase))
    return out


def _limits(m: Measurement) -> str:
    lo = human_value(m.low, m.unit) if m.low is not None else "-inf"
    hi = human_value(m.high, m.unit) if m.high is not None else "+inf"
    return f"[{lo}, {hi}]"


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
