"""Reading run records: the synthetic corpus, killed runs, and one-line errors for bad records."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hil.cli import main as hil_main
from hil.errors import ConfigError
from hil.report.runs import find_runs, load_run, parse_time

DATA = Path(__file__).parent / "data" / "records"
BAD = DATA / "bad"
EXPECTED = json.loads((BAD / "EXPECTED.json").read_text())
INCOMPLETE = DATA / "incomplete"
KILLED = json.loads((INCOMPLETE / "EXPECTED.json").read_text())
GOOD = DATA / "old"


def test_expected_covers_every_bad_file():
    assert sorted(p.name for p in BAD.iterdir() if p.name != "EXPECTED.json") == sorted(EXPECTED)
    assert sorted(p.name for p in INCOMPLETE.iterdir()
                  if p.name != "EXPECTED.json") == sorted(KILLED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_record_gives_one_line_error_naming_the_file(name):
    with pytest.raises(ConfigError) as info:
        load_run(BAD / name)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(str(BAD / name))
    assert EXPECTED[name] in msg


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_record_makes_compare_exit_2(name, capsys):
    code = hil_main(["report", "compare", str(GOOD), str(BAD / name)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("hil: ") and name in err and EXPECTED[name] in err


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_record_makes_the_page_exit_2(name, tmp_path, capsys):
    # the page skips a bad night among good ones, but with nothing readable it has nothing to say
    (tmp_path / "res" / "night").mkdir(parents=True)
    (tmp_path / "res" / "night" / "run.jsonl").write_bytes((BAD / name).read_bytes())
    code = hil_main(["report", "html", str(tmp_path / "res"), "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "no readable runs" in err and EXPECTED[name].split(":", 2)[-1].strip()[:30] in err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("name", sorted(KILLED))
def test_killed_run_makes_compare_exit_2_in_one_line(name, capsys):
    code = hil_main(["report", "compare", str(GOOD), str(INCOMPLETE / name)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"hil: {INCOMPLETE / name}") and KILLED[name] in line
    assert hil_main(["report", "compare", "--allow-incomplete", str(GOOD),
                     str(INCOMPLETE / name)]) in (0, 1)


def test_bad_record_as_old_side_also_exit_2(capsys):
    assert hil_main(["report", "compare", str(BAD / "unknown_schema.jsonl"), str(GOOD)]) == 2
    assert "unknown schema 2" in capsys.readouterr().err


def test_exit_2_through_the_real_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hil", "report", "compare", str(GOOD),
                           str(BAD / "truncated_middle.jsonl")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated_middle.jsonl:2: truncated JSON line" in lines[0]


@pytest.mark.parametrize("name", ["value_infinity.jsonl", "value_nan.jsonl", "foreign_image.png",
                                  "foreign_compare.json"])
def test_no_traceback_and_no_exit_1_through_the_real_command_line(name):
    for args in (["compare", str(GOOD), str(BAD / name)], ["compare", str(BAD / name), str(GOOD)]):
        proc = subprocess.run([sys.executable, "-m", "hil", "report", *args],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stdout == ""
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_extreme_but_finite_values_never_break_a_report(tmp_path, capsys):
    """Values at the edge of a double: subtracting them overflows, charts cannot tick them."""
    h = {"type": "header", "schema": 1, "run_id": "x", "rig": "sim", "board": "maix-bit",
         "firmware_profile": "p", "started": "2024-05-01T02:00:00Z"}
    values = [1.7e308, -1.7e308, 5e-324, 0.0, -0.0, 1e-300]
    for i, (old, new) in enumerate(zip(values, reversed(values))):
        for side, v in (("a", old), ("b", new)):
            d = tmp_path / "res" / f"{side}{i}"
            d.mkdir(parents=True)
            hdr = dict(h, run_id=f"{side}{i}", started=f"2024-05-0{1 if side == 'a' else 2}T02:00:00Z")
            t = {"type": "test", "nodeid": "t.py::test_x", "outcome": "failed", "duration": v if v >= 0 else 0,
                 "message": "", "measurements": [
                     {"name": "threshold_sd_bytes", "value": v, "unit": "bytes", "low": -v, "high": v},
                     {"name": "leak_per_cycle_bytes", "value": v, "unit": "bytes", "ok": False},
                     {"name": "load_time_s", "value": v, "unit": "s"}]}
            f = {"type": "footer", "finished": "2024-05-02T03:00:00Z", "exitstatus": 1}
            (d / "run.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (hdr, t, f)))
        code = hil_main(["report", "compare", "--json", str(tmp_path / "res" / f"a{i}"),
                         str(tmp_path / "res" / f"b{i}")])
        assert code in (0, 1), capsys.readouterr().err
        assert hil_main(["report", "compare", str(tmp_path / "res" / f"a{i}"),
                         str(tmp_path / "res" / f"b{i}")]) in (0, 1)
    assert hil_main(["report", "html", str(tmp_path / "res"), "-o", str(tmp_path / "r.html")]) == 0
    capsys.readouterr()


def test_missing_and_empty_directories(tmp_path, capsys):
    assert hil_main(["report", "compare", str(tmp_path / "nope"), str(GOOD)]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert hil_main(["report", "compare", str(tmp_path / "empty"), str(GOOD)]) == 2
    assert "no run record here" in capsys.readouterr().err


def test_killed_run_cut_last_line_is_tolerated_and_noted():
    run = load_run(DATA / "killed")
    assert [t.nodeid.split("::")[1] for t in run.tests] == ["test_load_v3", "test_load_v4"]
    assert not run.finished and run.exitstatus is None
    assert any("last line cut short" in n and ":4:" in n for n in run.notes)
    assert any("no footer" in n for n in run.notes)


def test_killed_run_is_refused_in_one_line_unless_allowed(capsys):
    # a killed run proves nothing about the tests it never reached: exit 2, never "regression"
    code = hil_main(["report", "compare", str(GOOD), str(DATA / "killed")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"hil: {DATA / 'killed' / 'run.jsonl'}:4: NEW run 2024-05-03T020000-sim "
                           f"was killed (no footer, last line cut short; 2 tests recorded)")
    assert "--allow-incomplete" in line
    code = hil_main(["report", "compare", "--allow-incomplete", str(GOOD), str(DATA / "killed")])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert "last line cut short" in out and "Not reached" in out


def test_cut_inside_a_multibyte_character_at_the_end(tmp_path):
    good = (GOOD / "run-gw0.jsonl").read_bytes().splitlines(keepends=True)
    f = tmp_path / "run.jsonl"
    f.write_bytes(b"".join(good[:2]) + b'{"type": "test", "message": "\xc3')
    run = load_run(f)
    assert len(run.tests) == 1 and any("cut short" in n for n in run.notes)


def test_several_record_files_in_one_dir_are_merged():
    run = load_run(GOOD)
    assert run.rigs == ("maixbit", "sim")
    assert run.finished and len(run.headers) == 2
    assert run.firmware_of("maixbit") == ("maixpy-v0.6.2-full", "v0.6.2-75-g973361c0d")
    mb = [t for t in run.tests if t.rig == "maixbit"]
    assert len(mb) == 2 and all(t.board == "maix-bit" for t in mb)
    assert run.only_rig("maixbit").rigs == ("maixbit",)


def test_extra_keys_and_missing_optional_keys_are_fine(tmp_path):
    f = tmp_path / "run.jsonl"
    f.write_text(json.dumps({"type": "header", "schema": 1, "run_id": "x", "rig": "r",
                             "firmware_profile": "p", "future_key": [1, 2]}) + "\n"
                 + json.dumps({"type": "test", "nodeid": "t::a", "outcome": "passed",
                               "something_new": True}) + "\n")
    run = load_run(f)
    (t,) = run.tests
    assert t.rig == "r" and t.firmware_profile == "p" and t.measurements == ()


def test_record_types_a_newer_writer_adds_are_skipped_with_a_note(tmp_path):
    lines = (GOOD / "run-gw0.jsonl").read_text().splitlines()
    step = json.dumps({"type": "step", "nodeid": "x", "name": "kpu.load", "duration": 0.4})
    f = tmp_path / "run.jsonl"
    f.write_text("\n".join([lines[0], step, lines[1], step, step] + lines[2:]) + "\n")
    run = load_run(f)
    assert len(run.tests) == len(load_run(GOOD / "run-gw0.jsonl").tests) and run.finished
    assert [n for n in run.notes if "step" in n] == [
        f"{f}: 3 records of type 'step' unknown to this hil (it reads header, test, footer); ignored"]


def test_same_test_twice_keeps_the_later_and_notes_it(tmp_path):
    h = json.dumps({"type": "header", "schema": 1, "run_id": "x", "rig": "r",
                    "firmware_profile": "p"})
    t1 = json.dumps({"type": "test", "nodeid": "t::a", "outcome": "failed",
                     "started": "2024-05-01T02:00:00Z"})
    t2 = json.dumps({"type": "test", "nodeid": "t::a", "outcome": "passed",
                     "started": "2024-05-01T02:05:00Z"})
    (tmp_path / "run-gw0.jsonl").write_text(h + "\n" + t2 + "\n")
    (tmp_path / "run-gw1.jsonl").write_text(h + "\n" + t1 + "\n")
    run = load_run(tmp_path)
    assert [t.outcome for t in run.tests] == ["passed"]
    assert any("recorded twice" in n for n in run.notes)


def test_find_runs_orders_by_start_and_skips_unreadable(tmp_path):
    import shutil
    for d in sorted((DATA / "history").iterdir())[::-1]:
        shutil.copytree(d, tmp_path / d.name)
    (tmp_path / "zz-broken").mkdir()
    (tmp_path / "zz-broken" / "run.jsonl").write_text("not json\n{}\n")
    (tmp_path / "compare.md").write_text("# not a run\n")
    runs, skipped = find_runs(tmp_path)
    assert [r.run_id[:10] for r in runs] == [f"2024-04-{d}" for d in (26, 27, 28, 29, 30)]
    assert len(skipped) == 1 and "zz-broken" in skipped[0] and "\n" not in skipped[0]


def test_parse_time_variants():
    assert parse_time("2024-05-01T02:00:00Z") == parse_time("2024-05-01T02:00:00+00:00")
    assert parse_time("2024-05-01T04:00:00+02:00") == parse_time("2024-05-01T02:00:00Z")
    assert parse_time("garbage") is None and parse_time(None) is None


def test_tests_missing_from_a_killed_run_are_not_reached_not_gone(capsys):
    from hil.report.compare import compare_runs
    c = compare_runs(load_run(GOOD), load_run(DATA / "killed"))
    kinds = {t.kind for g in c.groups for t in g.tests if t.label.startswith("sim/")}
    assert "gone" not in kinds and "not_reached" in kinds
    assert c.to_json()["counts"]["not_reached"] == 8


def test_null_measurement_value_is_dropped(tmp_path):
    # hil/report/record.py writes value null for a NaN/inf reading
    f = tmp_path / "run.jsonl"
    f.write_text(json.dumps({"type": "header", "schema": 1, "run_id": "x", "rig": "r",
                             "firmware_profile": "p"}) + "\n"
                 + json.dumps({"type": "test", "nodeid": "t::a", "outcome": "failed",
                               "measurements": [
                                   {"name": "a", "value": None, "unit": "s", "ok": False},
                                   {"name": "b", "value": 2, "unit": "s"}]}) + "\n")
    (t,) = load_run(f).tests
    assert [m.name for m in t.measurements] == ["b"]


def test_records_from_the_real_writer_are_read(tmp_path):
    record = pytest.importorskip("hil.report.record")
    w = record.RunRecordWriter(tmp_path, worker="gw0")
    w.header(run_id="r1", rig="sim", board="maix-bit", firmware_profile="maixpy-v0.6.2-full",
             firmware_version="v0.6.2-75-g973361c0d", port="/dev/pts/3", argv=["pytest"])
    w.test(nodeid="suites/test_x.py::test_a", rig="sim", firmware_profile="maixpy-v0.6.2-full",
           outcome="passed", duration=0.5, started=record.now_iso(),
           measurements=[record.MeasurementRecord.check("threshold_sd_bytes", 2252800, "bytes",
                                                        2_150_000, 2_300_000),
                         record.MeasurementRecord.check("bad", float("nan"), "s")])
    w.test(nodeid="suites/test_x.py::test_b", rig="sim", firmware_profile="maixpy-v0.6.2-full",
           outcome="broken", duration=0.1, started=record.now_iso(), message="LinkError: lost")
    w.footer(1)
    run = load_run(tmp_path)
    assert run.finished and run.exitstatus == 1 and run.started is not None
    a, b = run.tests
    assert a.measurements[0].ok is True and len(a.measurements) == 1
    assert b.broken and b.message == "LinkError: lost"


def test_what_the_writer_knows_of_the_build_reaches_the_firmware_line(tmp_path):
    from hil.report.compare import compare_runs
    from hil.report.record import RunRecordWriter
    for name, sha, banner in (("a", "11" * 32, "MicroPython v0.6.2-75-g973361c0d on 2022-04-16"),
                              ("b", "22" * 32, "MicroPython v0.6.2-75-g973361c0d on 2022-05-01")):
        w = RunRecordWriter(tmp_path / name)
        w.header(run_id=name, rig="sim", board="maix-bit", firmware_profile="maixpy-v0.6.2-full",
                 firmware_version="v0.6.2-75-g973361c0d",
                 firmware={"family": "maixpy", "banner": banner, "image": "maixpy.bin",
                           "image_sha256": sha})
        w.test(nodeid="t.py::test_a", rig="sim", firmware_profile="maixpy-v0.6.2-full",
               outcome="passed", duration=0.1, started="")
        w.footer(0)
    with pytest.raises(ValueError, match="firmware key 'colour'"):
        RunRecordWriter(tmp_path / "c").header(run_id="c", rig="r", board="b",
                                               firmware_profile="p", firmware={"colour": "red"})
    a, b = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    assert a.headers[0].family == "maixpy" and a.firmware_info("sim").image == "maixpy.bin"
    (g,) = compare_runs(a, b).groups
    # same version string, another build: the report says so
    assert g.firmware_change == (
        "maixpy-v0.6.2-full v0.6.2-75-g973361c0d: same version, new image, image sha256 "
        "111111111111 -> 222222222222 (maixpy.bin); banner 'MicroPython v0.6.2-75-g973361c0d on "
        "2022-04-16' -> 'MicroPython v0.6.2-75-g973361c0d on 2022-05-01'")


def test_run_one_level_down_as_the_plugin_writes_it(tmp_path, capsys):
    import shutil
    from hil.report.runs import locate_run
    nightly_dir = tmp_path / "2024-05-01T020000-sim"
    shutil.copytree(GOOD, nightly_dir / "20240501-020000-sim")
    assert locate_run(nightly_dir) == nightly_dir / "20240501-020000-sim"
    assert load_run(nightly_dir).run_id == "2024-05-01T020000-sim"
    runs, skipped = find_runs(tmp_path)
    assert [r.path.name for r in runs] == ["20240501-020000-sim"] and not skipped
    shutil.copytree(GOOD, nightly_dir / "20240501-030000-sim")
    with pytest.raises(ConfigError, match=r"holds 2 runs \(20240501-020000-sim, 20240501-030000-sim\)"):
        load_run(nightly_dir)
    assert len(find_runs(tmp_path)[0]) == 2
    assert hil_main(["report", "compare", str(nightly_dir), str(GOOD)]) == 2
    assert "name one of them" in capsys.readouterr().err
