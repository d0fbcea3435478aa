"""Night-vs-night comparison on synthetic records: exactly the planted changes, nothing else."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hil.cli import main as hil_main
from hil.errors import ConfigError
from hil.report.compare import (compare_runs, failure_spells, human_amount, measurement_phrase)
from hil.report.runs import find_runs, load_run
from hil.report.tolerance import Tolerance, Tolerances, better_direction, parse_tolerance

DATA = Path(__file__).parent / "data" / "records"
sys.path.insert(0, str(DATA))
import make_records  # noqa: E402  (the generator documents what was planted)

OLD, NEW, HISTORY = DATA / "old", DATA / "new", DATA / "history"


def _kinds(c, kind):
    return sorted(t.nodeid for g in c.groups for t in g.tests if t.kind == kind)


@pytest.fixture(scope="module")
def comparison():
    history, skipped = find_runs(HISTORY)
    assert not skipped and len(history) == 5
    return compare_runs(load_run(OLD), load_run(NEW), history=history)


def test_finds_exactly_the_planted_test_changes(comparison):
    p = make_records.PLANTED
    for kind in ("new_failure", "fixed", "still_failing", "added", "gone"):
        assert _kinds(comparison, kind) == sorted(p[kind]), kind
    assert _kinds(comparison, "broken") == sorted(p["broken"])
    assert _kinds(comparison, "flaky") == ["suites/test_load_sd.py::test_uart_flaky"]
    assert _kinds(comparison, "added_failing") == []
    assert _kinds(comparison, "newly_skipped") == []


def test_finds_exactly_the_planted_measurement_changes(comparison):
    changes = [m for g in comparison.groups for m in g.measurements]
    assert sorted(m.name for m in changes) == sorted(make_records.PLANTED["measurement_regressions"])
    assert all(m.regression for m in changes)
    names = {m.name for m in changes}
    # within tolerance: ignored; in a broken test: never compared
    assert "sys_heap_free_bytes" not in names and "load_time_sd_v3_s" not in names
    assert "load_time_flash_s" not in names


def test_human_phrases(comparison):
    phrases = {m.name: m.phrase for g in comparison.groups for m in g.measurements}
    assert phrases["threshold_sd_bytes"] == (
        "threshold_sd_bytes on sim/maixpy-v0.6.2-full fell 180 KiB (2252800 -> 2068480)")
    assert phrases["leak_per_cycle_bytes"] == (
        "leak_per_cycle_bytes on sim/maixpy-v0.6.2-full rose 8 KiB (0 -> 8192)")


def test_broken_is_never_a_regression(comparison):
    # 1 new failure + 2 measurements; the 3 broken tests (one was failing before) count for nothing
    assert comparison.regressions == 3
    assert comparison.exit_code == 1
    broken = [t for g in comparison.groups for t in g.tests if t.kind == "broken"]
    assert not any(t.regression for t in broken)
    assert {t.label for t in broken} == {"sim/maixpy-v0.6.2-full", "maixbit/maixpy-v0.6.2-full"}


def test_grouped_per_rig_and_firmware_with_version_change(comparison):
    labels = [g.label for g in comparison.groups]
    assert labels == ["maixbit/maixpy-v0.6.2-full", "sim/maixpy-v0.6.2-full"]
    sim = comparison.groups[1]
    assert sim.firmware_change == "maixpy-v0.6.2-full: v0.6.2-75-g973361c0d -> v0.6.2-80-gabcdef012"
    assert comparison.groups[0].firmware_change == ""


def test_without_history_the_flaky_test_is_a_new_failure():
    c = compare_runs(load_run(OLD), load_run(NEW))
    assert "suites/test_load_sd.py::test_uart_flaky" in _kinds(c, "new_failure")
    assert _kinds(c, "flaky") == []
    assert c.regressions == 4


def test_flaky_over_five_nights_in_detail():
    history, _ = find_runs(HISTORY)
    c = compare_runs(load_run(OLD), load_run(NEW), history=history, flaky_window=5)
    (flaky,) = [t for g in c.groups for t in g.tests if t.kind == "flaky"]
    assert flaky.history == "PPFPF"          # 04-29, 04-30, OLD, NEW ... last five nights
    assert not flaky.regression
    # a window of 2 only sees OLD and NEW: one spell of failure, so a plain new failure
    c2 = compare_runs(load_run(OLD), load_run(NEW), history=history, flaky_window=2)
    assert "suites/test_load_sd.py::test_uart_flaky" in _kinds(c2, "new_failure")


@pytest.mark.parametrize("seq, spells", [
    ("PPPPF", 1), ("PFFPP", 1), ("PFPFF", 2), ("FPF", 2), ("FBF", 1), ("PFSPF", 2), ("", 0),
])
def test_failure_spells(seq, spells):
    names = {"P": "passed", "F": "failed", "B": "broken", "S": "skipped"}
    assert failure_spells(names[c] for c in seq) == spells


def test_history_dir_containing_old_and_new_is_fine(tmp_path):
    import shutil
    for d in HISTORY.iterdir():
        shutil.copytree(d, tmp_path / d.name)
    shutil.copytree(OLD, tmp_path / "2024-05-01T020000")
    shutil.copytree(NEW, tmp_path / "2024-05-02T020000")
    history, _ = find_runs(tmp_path)
    c = compare_runs(load_run(tmp_path / "2024-05-01T020000"),
                     load_run(tmp_path / "2024-05-02T020000"), history=history)
    (flaky,) = [t for g in c.groups for t in g.tests if t.kind == "flaky"]
    assert flaky.history == "PPFPF"


def test_identical_runs_exit_0(capsys):
    assert hil_main(["report", "compare", str(OLD), str(OLD)]) == 0
    out = capsys.readouterr().out
    assert "No regression" in out


def test_cli_markdown_and_json(capsys, tmp_path):
    md_file, js_file = tmp_path / "c.md", tmp_path / "c.json"
    code = hil_main(["report", "compare", str(OLD), str(NEW), "--history", str(HISTORY),
                     "--markdown-out", str(md_file), "--json-out", str(js_file)])
    out = capsys.readouterr().out
    assert code == 1
    assert out == md_file.read_text()
    assert out.startswith("## HIL night-vs-night comparison")
    assert "**REGRESSION: 1 new failure, 2 measurements worse past tolerance" in out
    assert "- **sim**: threshold_sd_bytes fell 180 KiB (2252800 -> 2068480); tolerance 44 KiB" in out
    assert "- **sim**: `suites/test_load_sd.py::test_load_v4`: kpu.load raised ValueError" in out
    assert "Broken: infrastructure errors, not blamed on the firmware" in out
    assert len(out.splitlines()) < 80          # fits a CI summary
    assert hil_main(["report", "compare", str(OLD), str(NEW), "--history", str(HISTORY),
                     "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data == json.loads(js_file.read_text())
    assert data["exit_code"] == 1 and data["regression"] is True
    assert data["counts"]["new_failure"] == 1 and data["counts"]["broken"] == 3
    assert data["counts"]["flaky"] == 1 and data["counts"]["measurement_regressions"] == 2
    m = [m for g in data["groups"] for m in g["measurements"]]
    assert {x["name"]: x["delta"] for x in m} == {"threshold_sd_bytes": -184320,
                                                  "leak_per_cycle_bytes": 8192}


def test_tolerance_option_can_hide_or_reveal(capsys):
    # a loose tolerance for the threshold hides that drop; leak still counts
    code = hil_main(["report", "compare", str(OLD), str(NEW), "--json",
                     "--tolerance", "threshold_sd_bytes=256KiB",
                     "--tolerance", "s=1%"])
    data = json.loads(capsys.readouterr().out)
    names = {m["name"]: m for g in data["groups"] for m in g["measurements"]}
    assert "threshold_sd_bytes" not in names and names["leak_per_cycle_bytes"]["regression"]
    # a 1% tolerance on seconds reveals the 1.2 -> 1.4 s load time rise
    assert names["load_time_sd_v3_s"]["regression"] is True
    assert code == 1


def test_bad_tolerance_option_exit_2(capsys):
    assert hil_main(["report", "compare", str(OLD), str(NEW), "--tolerance", "bytes"]) == 2
    assert "expected KEY=SPEC" in capsys.readouterr().err
    assert hil_main(["report", "compare", str(OLD), str(NEW), "--tolerance", "bytes=lots"]) == 2
    assert "is not an amount" in capsys.readouterr().err


def _one_rig_run(tmp_path: Path, name: str, rig: str, fw: str, threshold: int, leak: int,
                 switch_outcome: str = "passed") -> Path:
    h = make_records.header(name, "2024-05-02T02:00:00Z", rig, (fw, "v"), None)
    ms_t = [make_records.measurement("threshold_sd_bytes", "bytes", threshold, 2_150_000, 2_300_000)]
    ms_l = [make_records.measurement("leak_per_cycle_bytes", "bytes", leak, None, 1024)]
    lines = [h,
             make_records.test_line("suites/test_memory_threshold.py::test_threshold", rig, fw,
                                    "passed" if threshold > 2_150_000 else "failed", "", ms_t),
             make_records.test_line("suites/test_switching.py::test_switch", rig, fw,
                                    switch_outcome, "", ms_l)]
    outcomes = [t["outcome"] for t in lines[1:]]
    lines.append(make_records.footer({o: outcomes.count(o) for o in set(outcomes)}))
    make_records.write(tmp_path / name / "run.jsonl", lines)
    return tmp_path / name


def test_match_by_test_compares_across_rigs_and_firmware(tmp_path, capsys):
    a = _one_rig_run(tmp_path, "a", "sim", "maixpy-v0.6.2-full", 2_252_800, 0)
    b = _one_rig_run(tmp_path, "b", "sim-regressed", "maixpy-v0.6.3-nightly-regressed",
                     1_990_656, 8192, "failed")
    # matched by rig name only, nothing lines up: all gone and added
    by_rig = compare_runs(load_run(a), load_run(b), match_by="rig")
    assert len(_kinds(by_rig, "gone")) == 2 and len(_kinds(by_rig, "added_failing")) == 2
    # by default the two rigs, one board and one firmware family, are compared test by test
    auto = compare_runs(load_run(a), load_run(b))
    assert _kinds(auto, "new_failure") == ["suites/test_memory_threshold.py::test_threshold",
                                          "suites/test_switching.py::test_switch"]
    assert not _kinds(auto, "gone") and not _kinds(auto, "added")
    assert auto.pairings[0].endswith("same board and firmware family, test by test")
    by_test = compare_runs(load_run(a), load_run(b), match_by="test")
    assert _kinds(by_test, "new_failure") == ["suites/test_memory_threshold.py::test_threshold",
                                             "suites/test_switching.py::test_switch"]
    ms = {m.name: m for g in by_test.groups for m in g.measurements}
    assert set(ms) == {"threshold_sd_bytes", "leak_per_cycle_bytes"}
    assert ms["threshold_sd_bytes"].phrase == (
        "threshold_sd_bytes on sim-regressed/maixpy-v0.6.3-nightly-regressed "
        "(vs sim/maixpy-v0.6.2-full) fell 256 KiB (2252800 -> 1990656), "
        "now outside its limits [2150000, 2300000]")
    assert by_test.groups[0].label == "sim-regressed/maixpy-v0.6.3-nightly-regressed"
    assert by_test.groups[0].old_label == "sim/maixpy-v0.6.2-full"
    code = hil_main(["report", "compare", "--match-by", "test", str(a), str(b)])
    out = capsys.readouterr().out
    assert code == 1 and "any rig and firmware against any other (--match-by test)" in out
    assert "**Firmware changed**: maixpy-v0.6.2-full v -> maixpy-v0.6.3-nightly-regressed v" in out


def test_match_by_test_refuses_ambiguous_sides(capsys):
    with pytest.raises(ConfigError, match="--match-by test needs each test once per side"):
        compare_runs(load_run(OLD), load_run(NEW), match_by="test")
    assert hil_main(["report", "compare", "--match-by", "test", str(OLD), str(NEW)]) == 2


def test_match_by_firmware_pairs_rigs_with_the_same_build(tmp_path):
    a = _one_rig_run(tmp_path, "a", "maixbit", "maixpy-v0.6.2-full", 2_252_800, 0)
    b = _one_rig_run(tmp_path, "b", "maixdock", "maixpy-v0.6.2-full", 2_252_800, 0)
    c = compare_runs(load_run(a), load_run(b), match_by="firmware")
    assert c.regressions == 0 and not _kinds(c, "gone") and not _kinds(c, "added")


def test_newly_outside_limits_within_tolerance_is_a_regression(tmp_path):
    a = _one_rig_run(tmp_path, "a", "sim", "fw", 2_152_000, 0)
    b = _one_rig_run(tmp_path, "b", "sim", "fw", 2_148_000, 0)   # 4000 bytes: within tolerance
    c = compare_runs(load_run(a), load_run(b))
    (m,) = [m for g in c.groups for m in g.measurements]
    assert m.regression and m.out_of_limits and "now outside its limits" in m.phrase


def test_a_better_change_is_listed_but_not_a_regression(tmp_path):
    a = _one_rig_run(tmp_path, "a", "sim", "fw", 2_200_000, 8192)
    b = _one_rig_run(tmp_path, "b", "sim", "fw", 2_200_000, 0)
    c = compare_runs(load_run(a), load_run(b))
    (m,) = [m for g in c.groups for m in g.measurements]
    assert m.name == "leak_per_cycle_bytes" and not m.regression and c.exit_code == 0


@pytest.mark.parametrize("spec, old, allowed", [
    ("4096", 1e6, 4096), ("2%", 1e6, 20000), ("4KiB,2%", 100000, 4096), ("4KiB,2%", 1e6, 20000),
    ("50ms+20%", 1.0, 0.25), ("1MiB", 0, 1048576), ("0.5s", 3, 0.5),
])
def test_parse_tolerance(spec, old, allowed):
    assert parse_tolerance(spec).allowed(old) == pytest.approx(allowed)


def test_default_tolerances():
    t = Tolerances()
    assert t.for_measurement("threshold_sd_bytes", "bytes").allowed(2252800) == pytest.approx(45056)
    assert t.for_measurement("leak_per_cycle_bytes", "bytes").allowed(0) == 4096
    assert t.for_measurement("load_time_sd_v3_s", "s").allowed(1.0) == pytest.approx(0.25)
    assert t.for_measurement("x", "furlongs") == Tolerance(0, 0.05)


@pytest.mark.parametrize("name, unit, low, high, want", [
    ("threshold_sd_bytes", "bytes", None, None, +1), ("leak_per_cycle_bytes", "bytes", None, None, -1),
    ("load_time_sd_v3_s", "s", None, None, -1), ("sys_heap_free_bytes", "bytes", None, None, +1),
    ("whatever", "count", 5, None, +1), ("whatever", "count", None, 5, -1),
    ("whatever", "count", None, None, 0), ("boot", "s", 1, 2, -1),
])
def test_better_direction(name, unit, low, high, want):
    assert better_direction(name, unit, low, high) == want


def test_amounts_for_humans():
    assert human_amount(184320, "bytes") == "180 KiB"
    assert human_amount(-8192, "bytes") == "8 KiB"
    assert human_amount(512, "bytes") == "512 bytes"
    assert human_amount(3 * 1024 * 1024 + 512 * 1024, "bytes") == "3.5 MiB"
    assert human_amount(0.42, "s") == "420 ms"
    assert measurement_phrase("load_time_sd_v3_s", "sim/x", 1.2, 2.04, "s") == (
        "load_time_sd_v3_s on sim/x rose 840 ms (1.2 -> 2.04 s)")


def test_long_sections_are_capped_for_a_ci_summary(tmp_path):
    from hil.report.markdown import render_markdown
    h = make_records.header("a", "2024-05-01T02:00:00Z", "sim", ("fw", "v"), None)
    old = [h] + [make_records.test_line(f"suites/t.py::test_{i}", "sim", "fw", "passed", "")
                 for i in range(60)]
    new = [h] + [make_records.test_line(f"suites/t.py::test_{i}", "sim", "fw", "broken", "")
                 for i in range(60)]
    make_records.write(tmp_path / "a" / "run.jsonl", old)
    make_records.write(tmp_path / "b" / "run.jsonl", new)
    c = compare_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b"))
    md = render_markdown(c)
    assert c.exit_code == 0 and c.count("broken") == 60
    assert "- ... and 35 more (see --json)" in md and len(md.splitlines()) < 50
