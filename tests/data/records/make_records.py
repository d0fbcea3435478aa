"""Regenerate the synthetic run records under tests/data/records/ (committed; rerun after a change).

    .venv/bin/python tests/data/records/make_records.py

Layout:
  history/2024-04-2{6..9}T020000-sim, history/2024-04-30T020000-sim   five older nights
  old/   2024-05-01 (two record files: run-gw0.jsonl rig sim, run-gw1.jsonl rig maixbit)
  new/   2024-05-02 (same), with the planted changes listed in PLANTED
  killed/run.jsonl   a run killed mid-write: no footer, last line cut
  bad/*              malformed records and foreign files; EXPECTED maps each to a fragment of
                     its one-line error (exit 2 from every report command)
  incomplete/*       killed runs: readable, refused by `hil report compare` unless
                     --allow-incomplete; EXPECTED as for bad/
"""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIM_FW = ("maixpy-v0.6.2-full", "v0.6.2-75-g973361c0d")
NEW_FW = ("maixpy-v0.6.2-full", "v0.6.2-80-gabcdef012")

# nodeid -> (old outcome, new outcome); None = absent on that night.
SIM_TESTS = {
    "suites/test_load_sd.py::test_load_v3": ("passed", "passed"),
    "suites/test_load_sd.py::test_load_v4": ("passed", "failed"),          # new failure
    "suites/test_load_errors.py::test_v5_rejected": ("failed", "passed"),  # fixed
    "suites/test_load_errors.py::test_truncated": ("failed", "failed"),    # still failing
    "suites/test_load_flash.py::test_flash_offset": ("passed", "broken"),  # broken, not blamed
    "suites/test_load_flash.py::test_flash_inside_fw": ("failed", "broken"),  # broken, not "fixed"
    "suites/test_old.py::test_gone": ("passed", None),                     # gone
    "suites/test_new.py::test_added": (None, "passed"),                    # added
    "suites/test_load_sd.py::test_uart_flaky": ("passed", "failed"),       # flaky given history
    "suites/test_memory_threshold.py::test_threshold_sd": ("passed", "passed"),
    "suites/test_switching.py::test_switch_with_deinit": ("passed", "passed"),
}
# History of test_uart_flaky over the five older nights, then old, new (above): P F P P F | P F.
FLAKY_HISTORY = ["passed", "failed", "passed", "passed", "failed"]
MAIXBIT_TESTS = {
    "suites/test_load_sd.py::test_load_v3": ("passed", "passed"),
    "suites/test_load_flash.py::test_flash_offset": ("passed", "broken"),
}

# (nodeid, name, unit, old, new, low, high); which changes a compare must report.
MEASUREMENTS = [
    # fell 180 KiB, past max(4096, 2%) = 45056: a regression
    ("suites/test_memory_threshold.py::test_threshold_sd", "threshold_sd_bytes", "bytes",
     2252800, 2068480, 1_900_000, 2_400_000),
    # fell 20000 bytes, within 2% of 3 MB (about 61 KB): ignored
    ("suites/test_memory_threshold.py::test_threshold_sd", "sys_heap_free_bytes", "bytes",
     3_060_000, 3_040_000, 1_000_000, None),
    # rose 0.2 s on 1.2 s, within 20% + 50 ms = 0.29 s: ignored
    ("suites/test_load_sd.py::test_load_v3", "load_time_sd_v3_s", "s", 1.20, 1.40, None, 10.0),
    # leak per cycle 0 -> 8192, past 4096: a regression (limit is wide here so the test passes)
    ("suites/test_switching.py::test_switch_with_deinit", "leak_per_cycle_bytes", "bytes",
     0, 8192, None, 65536),
    # a broken test's numbers are never compared
    ("suites/test_load_flash.py::test_flash_offset", "load_time_flash_s", "s", 0.5, 9.0, None, 10.0),
]

PLANTED = {
    "new_failure": ["suites/test_load_sd.py::test_load_v4"],
    "fixed": ["suites/test_load_errors.py::test_v5_rejected"],
    "still_failing": ["suites/test_load_errors.py::test_truncated"],
    "added": ["suites/test_new.py::test_added"],
    "gone": ["suites/test_old.py::test_gone"],
    "broken": ["suites/test_load_flash.py::test_flash_offset",
               "suites/test_load_flash.py::test_flash_inside_fw",
               "suites/test_load_flash.py::test_flash_offset"],     # also on maixbit
    "measurement_regressions": ["threshold_sd_bytes", "leak_per_cycle_bytes"],
}


def header(run_id: str, started: str, rig: str, fw: tuple[str, str], worker: str | None,
           board: str = "maix-bit") -> dict:
    return {"type": "header", "schema": 1, "run_id": run_id, "started": started, "host": "ci-1",
            "user": "ci", "hil_version": "0.1.0", "rig": rig, "board": board,
            "firmware_profile": fw[0], "firmware_version": fw[1], "port": "sim",
            "argv": ["pytest", "--rig", rig], "worker": worker}


def test_line(nodeid: str, rig: str, fw: str, outcome: str, started: str,
              measurements: list[dict] | None = None) -> dict:
    message = {"passed": "", "failed": "AssertionError: kpu.load raised ValueError",
               "broken": "hil.errors.BootTimeout: rig sim: no banner within 10.0 s",
               }.get(outcome, "")
    return {"type": "test", "nodeid": nodeid, "rig": rig, "firmware_profile": fw,
            "outcome": outcome, "duration": 1.5, "started": started, "message": message,
            "longrepr": message * 3, "measurements": measurements or [],
            "serial_log": "logs/" + nodeid.replace("/", "_").replace("::", "__") + ".log",
            "markers": []}


def footer(counts: dict[str, int]) -> dict:
    return {"type": "footer", "finished": "", "exitstatus": 1 if counts.get("failed") else 0,
            "counts": counts}


def write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def measurement(name: str, unit: str, value: float, low, high) -> dict:
    ok = (low is None or value >= low) and (high is None or value <= high)
    return {"name": name, "value": value, "unit": unit, "low": low, "high": high, "ok": ok}


def night(path: Path, day: str, side: int, fw: tuple[str, str], flaky: str | None,
          maixbit: bool) -> None:
    """side 0 = old outcomes, 1 = new outcomes; flaky overrides test_uart_flaky (history)."""
    run_id = f"{day}T020000-sim"
    started = f"{day}T02:00:00+00:00"
    lines = [header(run_id, started, "sim", fw, "gw0" if maixbit else None)]
    counts: dict[str, int] = {}
    for nodeid, outcomes in SIM_TESTS.items():
        outcome = outcomes[side]
        if nodeid.endswith("test_uart_flaky") and flaky:
            outcome = flaky
        if outcome is None:
            continue
        ms = [measurement(name, unit, (old, new)[side], lo, hi)
              for nid, name, unit, old, new, lo, hi in MEASUREMENTS if nid == nodeid]
        lines.append(test_line(nodeid, "sim", fw[0], outcome, started, ms))
        counts[outcome] = counts.get(outcome, 0) + 1
    lines.append(footer(counts))
    write(path / ("run-gw0.jsonl" if maixbit else "run.jsonl"), lines)
    if maixbit:
        mb = [header(run_id, started, "maixbit", SIM_FW, "gw1")]
        for nodeid, outcomes in MAIXBIT_TESTS.items():
            mb.append(test_line(nodeid, "maixbit", SIM_FW[0], outcomes[side], started))
        mb.append(footer({"passed": 2}))
        write(path / "run-gw1.jsonl", mb)


def make_good() -> None:
    for name in ("history", "old", "new", "killed"):
        shutil.rmtree(HERE / name, ignore_errors=True)
    for i, outcome in enumerate(FLAKY_HISTORY):
        day = f"2024-04-{26 + i:02d}"
        night(HERE / "history" / f"{day}T020000-sim", day, 0, SIM_FW, outcome, maixbit=False)
    night(HERE / "old", "2024-05-01", 0, SIM_FW, None, maixbit=True)
    night(HERE / "new", "2024-05-02", 1, NEW_FW, None, maixbit=True)
    # A killed run: header, two tests, the third cut mid-write (no newline), no footer.
    h = header("2024-05-03T020000-sim", "2024-05-03T02:00:00Z", "sim", SIM_FW, None)
    t1 = test_line("suites/test_load_sd.py::test_load_v3", "sim", SIM_FW[0], "passed", "")
    t2 = test_line("suites/test_load_sd.py::test_load_v4", "sim", SIM_FW[0], "passed", "")
    t3 = json.dumps(test_line("suites/test_switching.py::test_switch_with_deinit", "sim",
                              SIM_FW[0], "passed", ""))
    (HERE / "killed").mkdir()
    (HERE / "killed" / "run.jsonl").write_text(
        json.dumps(h) + "\n" + json.dumps(t1) + "\n" + json.dumps(t2) + "\n" + t3[:57])


H = json.dumps(header("r1", "2024-05-01T02:00:00+00:00", "sim", SIM_FW, None))
T = test_line("suites/t.py::test_a", "sim", SIM_FW[0], "passed", "2024-05-01T02:00:01+00:00")
TJ = json.dumps(T)
F = json.dumps(footer({"passed": 1}))


def _with(**changes) -> str:
    d = dict(T)
    for k, v in changes.items():
        if v is ...:
            d.pop(k, None)
        else:
            d[k] = v
    return json.dumps(d)


def _raw_measurement(value: str, high: str = "2300000") -> str:
    """A test line whose measurement carries ``value`` as raw JSON text (NaN, Infinity, ...)."""
    m = ('{"name": "threshold_sd_bytes", "value": %s, "unit": "bytes", "low": 2150000, '
         '"high": %s, "ok": false}' % (value, high))
    return TJ.replace('"measurements": []', f'"measurements": [{m}]')


def _hdr(**changes) -> str:
    d = json.loads(H)
    for k, v in changes.items():
        if v is ...:
            d.pop(k, None)
        else:
            d[k] = v
    return json.dumps(d)


# file name -> (content, fragment expected in the one-line error)
BAD: dict[str, tuple[str | bytes, str]] = {
    "empty.jsonl": ("", "empty run record"),
    "blank_lines_only.jsonl": ("\n\n  \n", "empty run record"),
    "no_header.jsonl": (TJ + "\n" + F + "\n", ":1: first record must be the header"),
    "header_no_type.jsonl": (_hdr(type=...) + "\n", ":1: first record must be the header (no 'type')"),
    "unknown_schema.jsonl": (_hdr(schema=2) + "\n" + F + "\n", ":1: unknown schema 2"),
    "schema_not_int.jsonl": (_hdr(schema="1") + "\n", ":1: header 'schema' must be int"),
    "header_missing_rig.jsonl": (_hdr(rig=...) + "\n", ":1: header record has no 'rig'"),
    "bad_started.jsonl": (_hdr(started="last tuesday") + "\n", ":1: header 'started' is not an ISO 8601 time"),
    "truncated_middle.jsonl": (H + "\n" + TJ[:70] + "\n" + TJ + "\n" + F + "\n",
                               ":2: truncated JSON line"),
    "truncated_last_with_newline.jsonl": (H + "\n" + TJ + "\n" + TJ[:70] + "\n",
                                          ":3: truncated JSON line"),
    "garbage_line.jsonl": (H + "\n" + "<<<<<<< HEAD\n" + F + "\n", ":2: invalid JSON"),
    "not_object.jsonl": (H + "\n" + "[1, 2, 3]\n", ":2: a record must be a JSON object"),
    "no_type.jsonl": (H + "\n" + _with(type=...) + "\n", ":2: record has no 'type'"),
    "type_not_a_name.jsonl": (H + "\n" + _with(type=7) + "\n", ":2: record 'type' must be a name, got 7"),
    "second_header.jsonl": (H + "\n" + H + "\n", ":2: second header in one file"),
    "after_footer.jsonl": (H + "\n" + F + "\n" + TJ + "\n", ":3: record after the footer"),
    "missing_nodeid.jsonl": (H + "\n" + _with(nodeid=...) + "\n", ":2: test record has no 'nodeid'"),
    "missing_outcome.jsonl": (H + "\n" + _with(outcome=...) + "\n", ":2: test record has no 'outcome'"),
    "bad_outcome.jsonl": (H + "\n" + _with(outcome="exploded") + "\n", ":2: test outcome 'exploded' unknown"),
    "duration_string.jsonl": (H + "\n" + _with(duration="1.5s") + "\n", ":2: test 'duration' must be int/float"),
    "measurement_value_string.jsonl": (
        H + "\n" + _with(measurements=[{"name": "threshold_sd_bytes", "value": "2MB", "unit": "bytes"}]) + "\n",
        ":2: measurement 'threshold_sd_bytes.value' must be a number"),
    "measurement_no_name.jsonl": (
        H + "\n" + _with(measurements=[{"value": 1, "unit": "bytes"}]) + "\n",
        ":2: measurements[0] has no 'name'"),
    "measurement_no_value.jsonl": (
        H + "\n" + _with(measurements=[{"name": "x", "unit": "bytes"}]) + "\n",
        ":2: measurement 'x' has no 'value'"),
    "measurements_not_list.jsonl": (H + "\n" + _with(measurements={"a": 1}) + "\n",
                                    ":2: test 'measurements' must be list"),
    "not_utf8.jsonl": ((H + "\n").encode() + b'{"type": "test", "nodeid": "\xff\xfe"}\n' + F.encode() + b"\n",
                       ":2: not UTF-8 text"),
    "only_cut_line.jsonl": (H[:40], "missing header (only a cut line)"),
    # Numbers a report cannot draw or subtract. The writer records an unreadable reading as null;
    # Python's json module reads these tokens (and 1e400) as NaN and infinities.
    "value_nan.jsonl": (H + "\n" + _raw_measurement("NaN") + "\n",
                        ":2: measurement 'threshold_sd_bytes.value' is NaN, not a finite number"),
    "value_infinity.jsonl": (H + "\n" + _raw_measurement("Infinity") + "\n",
                             ":2: measurement 'threshold_sd_bytes.value' is Infinity"),
    "value_minus_infinity.jsonl": (H + "\n" + _raw_measurement("-Infinity") + "\n",
                                   ":2: measurement 'threshold_sd_bytes.value' is -Infinity"),
    "value_1e400.jsonl": (H + "\n" + _raw_measurement("1e400") + "\n",
                          ":2: measurement 'threshold_sd_bytes.value' is Infinity"),
    "value_huge_integer.jsonl": (H + "\n" + _raw_measurement("9" * 400) + "\n",
                                 ":2: measurement 'threshold_sd_bytes.value' is out of range"),
    "value_too_many_digits.jsonl": (H + "\n" + _raw_measurement("9" * 5000) + "\n",
                                    ":2: unreadable JSON value"),
    "limit_infinity.jsonl": (H + "\n" + _raw_measurement("2252800", high="Infinity") + "\n",
                             ":2: measurement 'threshold_sd_bytes.high' is Infinity"),
    "duration_nan.jsonl": (H + "\n" + TJ.replace('"duration": 1.5', '"duration": NaN') + "\n",
                           ":2: test 'duration' is NaN"),
    "deeply_nested.jsonl": (H + "\n" + "[" * 3000 + "]" * 3000 + "\n",
                            ":2: JSON nested too deeply"),
    # Fields a report needs.
    "header_missing_profile.jsonl": (_hdr(firmware_profile=...) + "\n",
                                     ":1: header record has no 'firmware_profile'"),
    "header_missing_run_id.jsonl": (_hdr(run_id=...) + "\n", ":1: header record has no 'run_id'"),
    "footer_exitstatus_string.jsonl": (H + "\n" + TJ + "\n"
                                       + F.replace('"exitstatus": 0', '"exitstatus": "0"') + "\n",
                                       ":3: footer 'exitstatus' must be int"),
    # Files that are not run records at all, given by mistake.
    "foreign_compare.json": (json.dumps({"schema": 1, "old": ["a"], "new": ["b"], "match_by": "auto",
                                         "groups": []}, indent=1) + "\n",
                             ":1: not a hil run record: one multi-line JSON document with keys "
                             "schema, old, new, match_by"),
    "foreign_report.html": ("<!DOCTYPE html>\n<html><body>report</body></html>\n",
                            ":1: not a hil run record: line 1 is not JSON (starts '<!DOCTYPE html>')"),
    "foreign_junit.xml": ('<?xml version="1.0" encoding="utf-8"?>\n<testsuites/>\n',
                          ":1: not a hil run record: line 1 is not JSON (starts '<?xml version="),
    "foreign_image.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200, 256)),
                          ":1: not a hil run record: binary data, not UTF-8 text (byte 0; looks like a PNG image)"),
    "foreign_gzipped_record.jsonl.gz": (gzip.compress((H + "\n").encode(), mtime=0),
                                        "looks like gzip data"),
    "foreign_allure_result.json": (json.dumps({"uuid": "1f2e", "name": "test_a", "status": "passed",
                                               "steps": [], "start": 1}) + "\n",
                                   ":1: not a hil run record: the first record has no 'type' "
                                   "(keys: uuid, name, status, steps, ...)"),
    "foreign_event_log.jsonl": ('{"type": "event", "at": 1}\n{"type": "event", "at": 2}\n',
                                ":1: first record must be the header, got type 'event'"),
    "foreign_json_list.jsonl": ("[]\n", ":1: not a hil run record: line 1 is [], not a JSON object"),
}

# Killed runs: readable, but a comparison against them would call the unreached tests gone, so
# `hil report compare` refuses them (exit 2) unless --allow-incomplete.
INCOMPLETE: dict[str, tuple[str | bytes, str]] = {
    "killed_cut_last_line.jsonl": (H + "\n" + TJ + "\n" + TJ[:70],
                                   ":3: NEW run r1 was killed (no footer, last line cut short; "
                                   "1 tests recorded)"),
    "killed_between_lines.jsonl": (H + "\n" + TJ + "\n",
                                   ": NEW run r1 was killed (no footer; 1 tests recorded)"),
    "killed_before_any_test.jsonl": (H + "\n", ": NEW run r1 was killed (no footer; 0 tests recorded)"),
    "killed_inside_a_character.jsonl": ((H + "\n" + TJ + "\n").encode()
                                        + '{"type": "test", "message": "\u00e9'.encode()[:-1],
                                        ":3: NEW run r1 was killed (no footer, last line cut short"),
}


def make_bad() -> None:
    for where, corpus in (("bad", BAD), ("incomplete", INCOMPLETE)):
        d = HERE / where
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        for name, (content, _) in corpus.items():
            data = content if isinstance(content, bytes) else content.encode()
            (d / name).write_bytes(data)
        (d / "EXPECTED.json").write_text(
            json.dumps({name: frag for name, (_, frag) in sorted(corpus.items())}, indent=1)
            + "\n")


if __name__ == "__main__":
    make_good()
    make_bad()
    print(f"wrote synthetic run records under {HERE}")
