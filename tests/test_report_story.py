"""The story's rules, one by one: grouping measurements by cause, failure reasons, which rig is
compared with which."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hil.report.compare import MeasurementChange, compare_runs
from hil.report.grouping import SIMILAR_RATIO, family, group_changes
from hil.report.matching import SAME_FAMILY, SAME_RIG, pair_rigs, previous_for
from hil.report.reasons import Violation, short_reason, violations
from hil.report.runs import Header, Measurement, Run, profile_family
from hil.report.runs import TestResult as Result

KIB = 1024


def change(name: str, old: float, new: float, unit: str = "bytes", nodeid: str = "t.py::test_a",
           regression: bool = True) -> MeasurementChange:
    return MeasurementChange(nodeid=nodeid, name=name, unit=unit, label="sim/fw", old=old, new=new,
                             allowed=4096, direction=+1, regression=regression)


# ---------------------------------------------------------------- grouping rule

@pytest.mark.parametrize("name, fam", [
    ("sys_heap_free_before_sd_v3_min_bytes", "sys_heap"), ("sys_heap_free_bytes", "sys_heap"),
    ("threshold_sd_bytes", "threshold_sd"), ("threshold_flash_bytes", "threshold_flash"),
    ("leak_per_cycle_bytes", "leak_per"), ("load_time_sd_v3_s", "load_time"),
    ("x_bytes", "x"), ("bytes", "bytes"), ("Boot_Time_MS", "boot_time"), ("a__b_c", "a_b"),
])
def test_name_family_is_the_first_two_words_without_the_unit(name, fam):
    assert family(name) == fam


def test_the_heap_drop_of_the_regressed_build_is_one_line():
    """The regressed simulated build: boot heap -256 KiB, so every free-heap reading falls by
    256 KiB plus what the test had loaded; the after-switching reading also carries the leak."""
    boot = 2252800
    falls = [256, 256, 256, 264, 264, 288, 296, 296, 304, 312, 320, 328, 336, 344, 352, 360, 368]
    changes = [change(f"sys_heap_free_before_{i}_bytes", boot, boot - d * KIB, nodeid=f"t.py::test_{i}")
               for i, d in enumerate(falls)]
    changes.append(change("sys_heap_free_bytes", boot, boot - 256 * KIB, nodeid="t.py::test_smoke"))
    changes.append(change("sys_heap_free_after_switching_bytes", boot, boot - 576 * KIB,
                          nodeid="t.py::test_switching"))
    changes.append(change("threshold_sd_gc_heap_shrunk_bytes", 2445312, 2445312 - 256 * KIB))
    lines = group_changes(changes)
    assert [len(x.members) for x in lines] == [18, 1, 1]
    assert lines[0].phrase == ("18 sys_heap_free_* readings in 18 tests fell 256-368 KiB "
                               "(most by 256 KiB: sys_heap_free_bytes 2252800 -> 1990656)")
    # 576 KiB is more than 1.5 x 256 KiB: another cause (the leak), another line
    assert lines[1].members[0].name == "sys_heap_free_after_switching_bytes"
    assert lines[1].phrase == "sys_heap_free_after_switching_bytes fell 576 KiB (2252800 -> 1662976)"
    # same amount, other family: not merged into the heap line
    assert lines[2].members[0].name == "threshold_sd_gc_heap_shrunk_bytes"


@pytest.mark.parametrize("a, b, apart", [
    (change("sys_heap_free_a_bytes", 100e3, 90e3), change("sys_heap_free_b_bytes", 100e3, 110e3),
     "sign"),
    (change("load_time_a_s", 1, 2, unit="s"), change("load_time_b_bytes", 1, 2), "unit"),
    (change("threshold_sd_bytes", 100e3, 90e3), change("sys_heap_free_bytes", 100e3, 90e3),
     "family"),
    (change("sys_heap_free_a_bytes", 100e3, 90e3),
     change("sys_heap_free_b_bytes", 100e3, 90e3, regression=False), "verdict"),
    (change("sys_heap_free_a_bytes", 100e3, 90e3), change("sys_heap_free_b_bytes", 100e3, 84e3),
     "amount"),
])
def test_each_condition_of_the_rule_keeps_changes_apart(a, b, apart):
    assert [len(x.members) for x in group_changes([a, b])] == [1, 1], apart


def test_similar_and_equal_changes_do_group():
    a = change("sys_heap_free_a_bytes", 100e3, 90e3, nodeid="t.py::a")
    b = change("sys_heap_free_b_bytes", 100e3, 85e3, nodeid="t.py::b")     # 15k <= 1.5 x 10k
    (line,) = group_changes([a, b])
    assert line.grouped and line.tests == ("t.py::a", "t.py::b")
    assert line.phrase.startswith("2 sys_heap_free_* readings in 2 tests fell ")
    same = [change("load_time_s", 1.0, 2.0, unit="s", nodeid=f"t.py::{i}") for i in range(3)]
    (line,) = group_changes(same)
    assert line.phrase == ("3 load_time_s readings in 3 tests rose 1 s "
                           "(all by the same amount: load_time_s 1 -> 2 s)")


def test_a_group_is_measured_from_its_smallest_member_not_chained():
    # 100, 140, 190: 140 joins 100 (<= 150); 190 does not, though it is within 1.5 x 140
    cs = [change(f"sys_heap_free_{i}_bytes", 1e6, 1e6 - d) for i, d in enumerate((100e3, 140e3, 190e3))]
    assert sorted(len(x.members) for x in group_changes(cs)) == [1, 2]
    assert SIMILAR_RATIO == 1.5


def test_every_change_lands_in_exactly_one_line():
    rng = random.Random(19)
    names = ["sys_heap_free_a_bytes", "sys_heap_free_b_bytes", "threshold_sd_bytes", "load_time_s",
             "leak_per_cycle_bytes", "gc_free_bytes"]
    for _ in range(200):
        cs = [change(rng.choice(names), 1e6, 1e6 + rng.choice([-1, 1]) * rng.uniform(1e3, 5e5),
                     unit=rng.choice(["bytes", "s"]), nodeid=f"t.py::{i}",
                     regression=rng.random() < 0.7)
              for i in range(rng.randint(0, 30))]
        lines = group_changes(cs)
        members = [id(m) for line in lines for m in line.members]
        assert sorted(members) == sorted(id(m) for m in cs)
        for line in lines:
            ms = line.members
            assert len({(m.unit, m.delta > 0, m.regression, family(m.name)) for m in ms}) == 1
            smallest = min(abs(m.delta) for m in ms)
            assert all(abs(m.delta) <= SIMILAR_RATIO * smallest for m in ms)


# ---------------------------------------------------------------- reasons

REAL_SD = ("threshold_sd_bytes = 1921024 bytes, below the expected band 2150000..2300000 by 224 KiB "
           "(largest v3 model with main_mem 65536 that kpu.load takes from /sd, 1990656 bytes of "
           "system heap free after boot; 10 probes)")
REAL_LEAK = ("kpu.deinit leaks 8192 bytes per load/deinit cycle (327680 bytes over 40 load/deinit "
             "cycles in 20 switches A->B; worst cycle 8192 bytes; free system heap 1990656 -> "
             "1662976 bytes; tolerance 1024 bytes per cycle)")


def test_the_reason_is_the_message_head_without_its_detail():
    assert short_reason(REAL_SD) == ("threshold_sd_bytes = 1921024 bytes, below the expected band "
                                     "2150000..2300000 by 224 KiB")
    assert short_reason(REAL_LEAK) == "kpu.deinit leaks 8192 bytes per load/deinit cycle"
    assert short_reason("AssertionError: model did not load") == "model did not load"
    assert short_reason("kpu.load (flash) failed") == "kpu.load (flash) failed"   # head too short
    assert short_reason("x" * 400).endswith("...") and len(short_reason("x" * 400)) == 160


def test_a_message_naming_no_cause_gives_way_to_the_band_violation():
    v = Violation("threshold_sd_bytes", "bytes", 1921024, 2150000, 2300000, old=2183168)
    for generic in ("", "AssertionError", "assert 1921024 >= 2150000",
                    "suites/test_memory_threshold.py:88: AssertionError"):
        assert short_reason(generic, (v,)) == v.phrase
    assert v.phrase == ("threshold_sd_bytes 2183168 -> 1921024 bytes: 224 KiB below its band "
                        "2150000..2300000")
    assert short_reason("") == "failed, no message recorded"


@pytest.mark.parametrize("value, low, high, where", [
    (1921024, 2150000, 2300000, "224 KiB below its band 2150000..2300000"),
    (8192, None, 1024, "7 KiB above its ceiling 1024"),
    (10, 64, None, "54 bytes below its floor 64"),
    (5, 1, 10, "outside its band 1..10"),           # judged out by a rule of the suite's own
])
def test_band_violation_says_how_far_outside(value, low, high, where):
    assert Violation("m_bytes", "bytes", value, low, high).where == where


def _result(ms: list[Measurement], outcome: str = "failed") -> Result:
    return Result("t.py::test_a", "sim", "fw", outcome, measurements=tuple(ms))


def test_violations_are_the_readings_judged_outside():
    ms = [Measurement("a_bytes", 5, "bytes", 10, None, False),
          Measurement("b_bytes", 50, "bytes", 10, 20, None),      # no verdict: limits decide
          Measurement("c_bytes", 15, "bytes", 10, 20, True),
          Measurement("d_bytes", 1, "bytes", 10, None, False),
          Measurement("d_bytes", 12, "bytes", 10, None, True)]    # the last reading counts
    old = _result([Measurement("a_bytes", 12, "bytes", 10, None, True)], "passed")
    found = violations(_result(ms), old)
    assert [(v.name, v.old) for v in found] == [("a_bytes", 12), ("b_bytes", None)]


# ---------------------------------------------------------------- matching

T0 = datetime(2024, 5, 1, 2, tzinfo=timezone.utc)


def run(run_id: str, rigs: dict[str, tuple[str, str]], day: int = 0, finished: bool = True,
        outcome: str = "passed", family: str = "") -> Run:
    """rigs: name -> (board, profile)."""
    started = T0 + timedelta(days=day)
    headers = tuple(Header(Path(f"{run_id}.jsonl"), run_id, rig, profile, started, board=board,
                           firmware_family=family)
                    for rig, (board, profile) in rigs.items())
    tests = tuple(Result(f"t.py::test_{i}", rig, profile, outcome, board=board)
                  for rig, (board, profile) in rigs.items() for i in range(2))
    return Run(Path(run_id), run_id, started, headers, tests, finished, 0 if finished else None)


BIT_FULL = ("maix-bit", "maixpy-v0.6.2-full")
BIT_REG = ("maix-bit", "maixpy-v0.6.3-nightly-regressed")
GO_FULL = ("maix-go", "maixpy-v0.6.2-full")


def test_profile_family_from_the_name_unless_the_record_says():
    assert profile_family("maixpy-v0.6.2-full") == "maixpy"
    assert profile_family("csdk_0.9") == "csdk"
    h = Header(Path("r"), "r", "sim", "my-build", firmware_family="maixpy")
    assert h.family == "maixpy"


def test_same_name_first_then_same_board_and_family():
    old = run("o", {"sim": BIT_FULL, "maixgo": GO_FULL})
    new = run("n", {"sim": BIT_FULL, "sim-regressed": BIT_REG, "maixgo-2": GO_FULL})
    pairs = pair_rigs([old], [new])
    assert (pairs["sim"].old_rig, pairs["sim"].how) == ("sim", SAME_RIG)
    assert (pairs["sim-regressed"].old_rig, pairs["sim-regressed"].how) == ("sim", SAME_FAMILY)
    assert pairs["maixgo-2"].old_rig == "maixgo"
    assert pair_rigs([old], [new], by_board=False)["sim-regressed"].old_rig is None


def test_other_board_or_family_is_not_compared_and_says_how_to():
    old = run("o", {"maixgo": GO_FULL})
    new = run("n", {"sim": BIT_FULL})
    (p,) = pair_rigs([old], [new]).values()
    assert p.old_rig is None and "--match-by test" in p.note and "maix-bit" in p.note
    other_family = run("o2", {"bit": ("maix-bit", "csdk-0.1")})
    assert pair_rigs([other_family], [new])["sim"].old_rig is None


def test_ambiguous_candidates_prefer_a_renamed_rig_then_the_same_profile():
    old = run("o", {"bit-a": BIT_FULL, "bit-b": BIT_REG})
    # bit-a also ran tonight under its own name: bit-c takes the rig that did not (bit-b)
    assert pair_rigs([old], [run("n", {"bit-a": BIT_FULL, "bit-c": BIT_FULL})])["bit-c"].old_rig == "bit-b"
    # neither ran tonight: the one with the same profile
    assert pair_rigs([old], [run("n", {"bit-c": BIT_REG})])["bit-c"].old_rig == "bit-b"
    # two equal candidates: none, and the note names them
    twins = run("o", {"bit-a": BIT_FULL, "bit-b": BIT_FULL})
    p = pair_rigs([twins], [run("n", {"bit-c": BIT_FULL})])["bit-c"]
    assert p.old_rig is None and "bit-a, bit-b" in p.note


def test_previous_night_is_the_rig_own_else_its_kin():
    history = [run("d0", {"sim": BIT_FULL}, 0), run("d1", {"sim": BIT_FULL}, 1),
               run("d2-killed", {"sim": BIT_FULL}, 2, finished=False),
               run("go", {"maixgo": GO_FULL}, 2)]
    tonight = run("d3", {"sim": BIT_FULL, "sim-regressed": BIT_REG}, 3)
    prev, rig = previous_for(history, "sim", tonight)
    assert (prev.run_id, rig) == ("d1", "sim")               # finished beats killed
    prev, rig = previous_for(history, "sim-regressed", tonight)
    assert (prev.run_id, rig) == ("d1", "sim")               # same board and family
    assert previous_for(history, "sim", run("d", {"sim": BIT_FULL}, -1)) is None


def test_compare_across_rig_names_says_what_it_compared():
    old = run("o", {"sim": BIT_FULL})
    new = run("n", {"sim-regressed": BIT_REG}, 1, outcome="failed")
    c = compare_runs(old, new)
    assert c.count("new_failure") == 2 and not c.count("gone") and not c.count("added")
    (sentence,) = c.pairings
    assert sentence.startswith("sim-regressed (maix-bit, maixpy-v0.6.3-nightly-regressed; run n")
    assert "against sim (maix-bit, maixpy-v0.6.2-full; run o" in sentence
    assert sentence.endswith("same board and firmware family, test by test")
    assert c.groups[0].firmware_change == "maixpy-v0.6.2-full -> maixpy-v0.6.3-nightly-regressed"
