"""Night-versus-night comparison of run records: what changed, and is it a regression.

Tests are matched between OLD and NEW by a key chosen with ``match_by``:
- "auto" (default): rigs are paired as a person means (matching.py): a NEW rig with the OLD rig
  of the same name, else with the OLD rig on the same board and firmware family, whatever it is
  called; paired rigs are compared test by test. The firmware may change between the two sides;
  that is what a nightly tests, and the report says so.
- "rig": (rig, nodeid) only: rigs of different names are never compared.
- "firmware": (firmware profile, nodeid): the same build on different rigs.
- "test": nodeid alone: any rig and firmware against any other.
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
A failing test carries its one-line reason and the measurements outside their limits that
explain it (reasons.py). Measurements of tests present on both sides are compared with their
tolerance (tolerance.py); a change past it in the worse direction, or a value newly outside its
limits, is a regression; a change past it in the better or an unknown direction is listed but
is not a regression.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from hil.errors import ConfigError
from hil.report.changes import (FAILING_KINDS, REGRESSION_KINDS, Comparison, Group,
                                MeasurementChange, TestChange, summarize)
from hil.report.matching import SAME_FAMILY, SAME_RIG, RigPair, describe, pair_rigs
from hil.report.phrases import human_amount, human_value, limits_text, measurement_phrase
from hil.report.reasons import short_reason, violations
from hil.report.runs import FirmwareInfo, Measurement, Run, TestResult, same_run, unique_runs
from hil.report.tolerance import Tolerances, better_direction

__all__ = ["compare_runs", "Comparison", "Group", "TestChange", "MeasurementChange", "summarize",
           "failure_spells", "firmware_change", "human_amount", "human_value",
           "measurement_phrase", "MATCH_BY", "FAILING_KINDS", "REGRESSION_KINDS"]

MATCH_BY = ("auto", "rig", "firmware", "test")
DEFAULT_FLAKY_WINDOW = 5


# ---------------------------------------------------------------- matching

Key = tuple[str, str]


@dataclass(frozen=True)
class _Keys:
    """How tests of each side become keys. For auto/rig the first part is the NEW rig a test is
    compared on, so an OLD rig paired with a NEW rig of another name lines up with it."""
    match_by: str
    pairs: dict[str, RigPair]          # NEW rig -> pairing (auto, rig)
    old_to_new: dict[str, list[str]]   # OLD rig -> the NEW rigs compared with it

    def new(self, t: TestResult) -> Key:
        if self.match_by in ("auto", "rig"):
            return t.rig, t.nodeid
        if self.match_by == "firmware":
            return t.firmware_profile, t.nodeid
        return "", t.nodeid

    def old(self, t: TestResult) -> list[Key]:
        if self.match_by in ("auto", "rig"):
            return [(r, t.nodeid) for r in self.old_to_new.get(t.rig, [])] or [(t.rig, t.nodeid)]
        return [self.new(t)]

    def old_rig_for(self, new_rig: str) -> str | None:
        p = self.pairs.get(new_rig)
        return p.old_rig if p else None


def _keys(old_runs: list[Run], new_runs: list[Run], match_by: str,
          rig_pairs: dict[str, str] | None = None) -> _Keys:
    pairs = (pair_rigs(old_runs, new_runs, by_board=match_by == "auto")
             if match_by in ("auto", "rig") else {})
    for new_rig, old_rig in (rig_pairs or {}).items():   # the caller knows better (nightly)
        if new_rig in pairs:
            how = SAME_RIG if new_rig == old_rig else SAME_FAMILY
            pairs[new_rig] = RigPair(new_rig, old_rig, how)
    old_to_new: dict[str, list[str]] = {}
    for p in pairs.values():
        if p.old_rig is not None:
            old_to_new.setdefault(p.old_rig, []).append(p.new_rig)
    return _Keys(match_by, pairs, old_to_new)


def label_of(t: TestResult) -> str:
    return f"{t.rig}/{t.firmware_profile}"


def _side(runs: list[Run], keys: _Keys, name: str) -> dict[Key, TestResult]:
    """Tests of one side by key; later runs win over earlier ones for the same key."""
    out: dict[Key, TestResult] = {}
    for run in sorted(runs, key=Run.sort_key):
        seen_here: dict[Key, TestResult] = {}
        for t in run.tests:
            for k in (keys.old(t) if name == "OLD" else [keys.new(t)]):
                if k in seen_here:
                    other = seen_here[k]
                    raise ConfigError(
                        f"{name} {run.path}: {t.nodeid} ran on {label_of(other)} and on "
                        f"{label_of(t)}; --match-by {keys.match_by} needs each test once per side "
                        f"(try --match-by auto)")
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


# ---------------------------------------------------------------- comparison

@dataclass
class _Builder:
    tests: list[TestChange] = field(default_factory=list)
    measurements: list[MeasurementChange] = field(default_factory=list)


def compare_runs(old: Run | list[Run], new: Run | list[Run], *, history: list[Run] | None = None,
                 match_by: str = "auto", tolerances: Tolerances | None = None,
                 flaky_window: int = DEFAULT_FLAKY_WINDOW,
                 rig_pairs: dict[str, str] | None = None) -> Comparison:
    """Compare two sides (each one run or several merged) and classify every difference.

    ``rig_pairs`` (NEW rig -> OLD rig) overrides the pairing of ``match_by`` auto/rig for the
    rigs it names, for a caller that chose each rig's previous night itself."""
    if match_by not in MATCH_BY:
        raise ConfigError(f"--match-by {match_by!r}: must be one of {', '.join(MATCH_BY)}")
    if flaky_window < 2:
        raise ConfigError(f"--flaky-window {flaky_window}: must be at least 2")
    old_runs = [old] if isinstance(old, Run) else list(old)
    new_runs = [new] if isinstance(new, Run) else list(new)
    tols = tolerances or Tolerances()
    keys = _keys(old_runs, new_runs, match_by, rig_pairs)
    olds = _side(old_runs, keys, "OLD")
    news = _side(new_runs, keys, "NEW")

    # Timeline for flaky detection: history, then OLD, then NEW, each run once, oldest first.
    hist = unique_runs(list(history or []) + old_runs)
    hist = [r for r in hist if not any(same_run(r, n) for n in new_runs)]
    timeline: dict[Key, list[str]] = {}
    for run in hist:
        for t in run.tests:
            for k in keys.old(t):
                timeline.setdefault(k, []).append(t.outcome)

    notes: list[str] = []
    for r in unique_runs(old_runs + new_runs):
        notes.extend(r.notes)

    new_fw = _firmware_by_rig(new_runs)
    old_fw = _firmware_by_rig(old_runs)
    unfinished = {rig for r in new_runs if not r.finished for rig in r.rigs}
    by_rig = match_by in ("auto", "rig")
    groups: dict[tuple[str, str], _Builder] = {}

    for k in sorted(set(olds) | set(news)):
        o, n = olds.get(k), news.get(k)
        if n is None:
            assert o is not None
            # A gone test is filed under the rig/firmware its (paired) rig has now.
            fw = new_fw.get(k[0]) if by_rig else None
            new_label = f"{k[0]}/{fw}" if fw else label_of(o)
            b = groups.setdefault((new_label, label_of(o)), _Builder())
            cut = k[0] in unfinished if by_rig else bool(unfinished)
            b.tests.append(TestChange("not_reached" if cut else "gone", o.nodeid, label_of(o),
                                      o.outcome, None, o.message))
            continue
        if o is None:
            old_rig = keys.old_rig_for(n.rig) if by_rig else None
            fw = old_fw.get(old_rig) if old_rig else None
            old_label = f"{old_rig}/{fw}" if fw else label_of(n)
            b = groups.setdefault((label_of(n), old_label), _Builder())
            if n.failed:
                found = violations(n)
                b.tests.append(TestChange("added_failing", n.nodeid, label_of(n), None, n.outcome,
                                          n.message, reason=short_reason(n.message, found),
                                          violations=found))
            else:
                b.tests.append(TestChange("added", n.nodeid, label_of(n), None, n.outcome,
                                          n.message))
            continue
        b = groups.setdefault((label_of(n), label_of(o)), _Builder())
        seq = (timeline.get(k, []) + [n.outcome])[-flaky_window:]
        change = _classify(o, n, seq)
        if change is not None:
            b.tests.append(change)
        if not (o.broken or n.broken):
            b.measurements.extend(_measurements(o, n, tols, by_rig))

    pairings = _pairings(keys, old_runs, new_runs, match_by)
    out_groups = []
    for (new_label, old_label), b in sorted(groups.items()):
        new_rig, old_rig = new_label.split("/", 1)[0], old_label.split("/", 1)[0]
        fw_change = firmware_change(_info(old_runs, old_rig), _info(new_runs, new_rig))
        compared = describe(keys.pairs[new_rig], old_runs, new_runs) if new_rig in keys.pairs \
            else ""
        out_groups.append(Group(label=new_label, old_label=old_label, firmware_change=fw_change,
                                tests=tuple(b.tests), measurements=tuple(b.measurements),
                                compared=compared))
    return Comparison(old=tuple(r.label for r in old_runs), new=tuple(r.label for r in new_runs),
                      match_by=match_by, groups=tuple(out_groups), notes=tuple(notes),
                      history_runs=len([r for r in hist
                                        if not any(same_run(r, o) for o in old_runs)]),
                      pairings=pairings)


def _pairings(keys: _Keys, old_runs: list[Run], new_runs: list[Run],
              match_by: str) -> tuple[str, ...]:
    if keys.pairs:
        return tuple(describe(p, old_runs, new_runs) for _, p in sorted(keys.pairs.items()))
    what = {"firmware": "by firmware profile and test (any rig running the same profile)",
            "test": "test by test, any rig and firmware against any other (--match-by test)"}
    old = ", ".join(r.label for r in old_runs)
    new = ", ".join(r.label for r in new_runs)
    return (f"{new} against {old}: {what.get(match_by, match_by)}",)


def _firmware_by_rig(runs: list[Run]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in runs:
        for rig in r.rigs:
            profile, _ = r.firmware_of(rig)
            if profile:
                out[rig] = profile
    return out


def _info(runs: list[Run], rig: str) -> FirmwareInfo | None:
    for r in sorted(runs, key=Run.sort_key, reverse=True):
        info = r.firmware_info(rig)
        if info is not None:
            return info
    return None


def firmware_change(before: FirmwareInfo | tuple[str, str] | None,
                    after: FirmwareInfo | tuple[str, str] | None) -> str:
    """'maixpy-v0.6.2-full: v0.6.2-75 -> v0.6.2-80', plus what else the records say changed
    (image sha256, banner); '' when nothing changed or it is unknown."""
    if not before or not after:
        return ""
    b = before if isinstance(before, FirmwareInfo) else FirmwareInfo(*before)
    a = after if isinstance(after, FirmwareInfo) else FirmwareInfo(*after)
    parts = []
    if (b.profile, b.version) != (a.profile, a.version):
        if b.profile == a.profile:
            parts.append(f"{a.profile}: {b.version or '?'} -> {a.version or '?'}")
        else:
            parts.append(f"{' '.join((b.profile, b.version)).strip()} -> "
                         f"{' '.join((a.profile, a.version)).strip()}")
    if b.image_sha256 and a.image_sha256 and b.image_sha256 != a.image_sha256:
        same = "" if parts else f"{a.profile} {a.version}: same version, new image, "
        parts.append(f"{same}image sha256 {b.image_sha256[:12]} -> {a.image_sha256[:12]}"
                     + (f" ({a.image})" if a.image else ""))
    if b.banner and a.banner and b.banner != a.banner:
        parts.append(f"banner {b.banner!r} -> {a.banner!r}")
    return "; ".join(parts)


def _classify(o: TestResult, n: TestResult, seq: list[str]) -> TestChange | None:
    label = label_of(n)
    if n.broken:
        return TestChange("broken", n.nodeid, label, o.outcome, n.outcome, n.message,
                          reason=short_reason(n.message))
    found = violations(n, o) if n.failed else ()
    why = short_reason(n.message, found) if n.failed else ""
    if failure_spells(seq) >= 2:
        return TestChange("flaky", n.nodeid, label, o.outcome, n.outcome, n.message,
                          "".join(_letter(s) for s in seq), reason=why, violations=found)
    if n.failed and o.failed:
        return TestChange("still_failing", n.nodeid, label, o.outcome, n.outcome, n.message,
                          reason=why, violations=found)
    if n.failed:
        return TestChange("new_failure", n.nodeid, label, o.outcome, n.outcome, n.message,
                          reason=why, violations=found)
    if o.failed and n.ok:
        return TestChange("fixed", n.nodeid, label, o.outcome, n.outcome, o.message,
                          reason=short_reason(o.message, violations(o)))
    if n.outcome == "skipped" and o.outcome != "skipped":
        return TestChange("newly_skipped", n.nodeid, label, o.outcome, n.outcome, n.message)
    return None


def _by_name(ms: tuple[Measurement, ...]) -> dict[str, Measurement]:
    # A name recorded twice in one test keeps its last value (the final, settled reading).
    return {m.name: m for m in ms}


def _measurements(o: TestResult, n: TestResult, tols: Tolerances,
                  by_rig: bool) -> list[MeasurementChange]:
    out = []
    old_ms = _by_name(o.measurements)
    # Same rig, new firmware (a nightly): the group already says the firmware changed.
    same = label_of(n) == label_of(o) or (by_rig and n.rig == o.rig)
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
            phrase += f", now outside its limits {limits_text(nm.low, nm.high, nm.unit)}"
        out.append(MeasurementChange(
            nodeid=n.nodeid, name=name, unit=unit, label=label, old=om.value, new=nm.value,
            allowed=allowed, direction=direction, regression=regression,
            limits=(nm.low, nm.high), out_of_limits=nm.ok is False, phrase=phrase))
    return out
