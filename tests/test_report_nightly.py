"""`hil nightly` end to end with a small fake suite that writes real run records.

The fake suite has its own conftest that defines --rig/--hil-results and writes records with
hil/report/record.py; the real hil plugin is kept out with ``-p no:hil.plugin`` (passed after
``--``, as a user passes extra pytest arguments), so this test does not depend on the rigs or
the simulator. What a night measures comes from a scenario JSON file named by an env variable.
"""
from __future__ import annotations

import json
import re

import pytest

from hil.cli import main as hil_main

pytest.importorskip("hil.report.record")

CONFTEST = '''
import json, os
from pathlib import Path
from hil.report.record import MeasurementRecord, RunRecordWriter, new_run_id, now_iso

S = json.loads(Path(os.environ["HIL_FAKE_SCENARIO"]).read_text())


class Recorder:
    def __init__(self, writer, rig, fw):
        self.w, self.rig, self.fw = writer, rig, fw

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and not report.passed):
            name = report.nodeid.split("::")[-1]
            outcome = "broken" if report.when == "setup" else report.outcome
            ms = [MeasurementRecord.check(*m) for m in S["measurements"].get(name, [])]
            self.w.test(nodeid=report.nodeid, rig=self.rig, firmware_profile=self.fw,
                        outcome=outcome, duration=report.duration, started=now_iso(),
                        message="" if report.passed else str(report.longrepr).splitlines()[-1],
                        measurements=ms)

    def pytest_sessionfinish(self, session, exitstatus):
        self.w.footer(int(exitstatus))


def pytest_addoption(parser):
    parser.addoption("--rig", action="append", default=[])
    parser.addoption("--hil-results", default="results")


def pytest_configure(config):
    if not config.getoption("--rig"):
        return
    rig = config.getoption("--rig")[0]
    fw = S["firmware"][rig]
    results = Path(config.getoption("--hil-results"))
    run_id = new_run_id(rig, results)       # like the real plugin: <results>/<run_id>/run.jsonl
    w = RunRecordWriter(results / run_id)
    w.header(run_id=run_id, rig=rig, board="maix-bit", firmware_profile=fw[0],
             firmware_version=fw[1], argv=["pytest"])
    config.pluginmanager.register(Recorder(w, rig, fw[0]), "fake-recorder")
'''

TESTS = '''
import json, os
from pathlib import Path
S = json.loads(Path(os.environ["HIL_FAKE_SCENARIO"]).read_text())

def test_memory_threshold():
    assert S["pass"]["test_memory_threshold"], "threshold below the band"

def test_switching():
    assert S["pass"]["test_switching"], "free memory not back after deinit"

def test_load_sd():
    pass
'''

HEALTHY = {
    "firmware": {"simfake": ["maixpy-v0.6.2-full", "v0.6.2-75-g973361c0d"]},
    "pass": {"test_memory_threshold": True, "test_switching": True},
    "measurements": {
        "test_memory_threshold": [["threshold_sd_bytes", 2252800, "bytes", 2150000, 2300000]],
        "test_switching": [["leak_per_cycle_bytes", 0, "bytes", None, 1024]],
        "test_load_sd": [["load_time_sd_v3_s", 1.2, "s", None, 10]],
    },
}
REGRESSED = {
    "firmware": {"simfake": ["maixpy-v0.6.3-nightly-regressed", "v0.6.3-4-g1c0ffee"]},
    "pass": {"test_memory_threshold": False, "test_switching": False},
    "measurements": {
        "test_memory_threshold": [["threshold_sd_bytes", 1990656, "bytes", 2150000, 2300000]],
        "test_switching": [["leak_per_cycle_bytes", 8192, "bytes", None, 1024]],
        "test_load_sd": [["load_time_sd_v3_s", 1.25, "s", None, 10]],
    },
}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    suites = tmp_path / "fake_suites"
    suites.mkdir()
    (suites / "conftest.py").write_text(CONFTEST)
    (suites / "test_fake.py").write_text(TESTS)
    scenario = tmp_path / "scenario.json"
    monkeypatch.setenv("HIL_FAKE_SCENARIO", str(scenario))
    monkeypatch.chdir(tmp_path)   # keep the checkout's conftest/ini out of the pytest runs

    def night(data: dict, now: str, *extra: str) -> int:
        scenario.write_text(json.dumps(data))
        return hil_main(["nightly", "--rig", "simfake", "--results", str(tmp_path / "results"),
                         "--suites", str(suites), "--now", now, "--timeout", "120",
                         "--", "-p", "no:hil.plugin", "-p", "no:cacheprovider", "-q", *extra])
    return night, tmp_path / "results"


def test_nightly_first_night_then_regression(fake, capsys):
    night, results = fake
    assert night(HEALTHY, "2024-05-01T020000") == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "first night on rig simfake" in out
    # progress on stderr: where the run's serial logs are, then a line per finished test module
    assert f"hil nightly: rig simfake: live serial logs in {results / '2024-05-01T020000-simfake'}" in captured.err
    assert re.search(r"^hil nightly: rig simfake: test_fake.py: 3 passed; 3 tests in 0m\d\ds", captured.err, re.M), \
        captured.err
    run1 = results / "2024-05-01T020000-simfake"
    assert len(list(run1.glob("*/run.jsonl"))) == 1
    assert (results / "2024-05-01T020000-simfake.console.log").is_file()

    assert night(HEALTHY, "2024-05-02T020000") == 0
    assert "No regression" in capsys.readouterr().out

    assert night(REGRESSED, "2024-05-03T020000") == 1
    out = capsys.readouterr().out
    md = (results / "compare.md").read_text()
    assert md == out
    # failures first; the fake's messages name no cause, so the band violations do
    lines = md.splitlines()
    assert lines[4] == "**New failures (2)**"
    assert lines[5] == ("- `fake_suites/test_fake.py::test_memory_threshold`: threshold_sd_bytes "
                        "2252800 -> 1990656 bytes: 156 KiB below its band 2150000..2300000")
    assert lines[7] == ("- `fake_suites/test_fake.py::test_switching`: leak_per_cycle_bytes "
                        "0 -> 8192 bytes: 7 KiB above its ceiling 1024")
    assert "**Firmware changed**: maixpy-v0.6.2-full v0.6.2-75-g973361c0d -> " \
           "maixpy-v0.6.3-nightly-regressed v0.6.3-4-g1c0ffee" in md
    assert "**Measurements worse past tolerance (2)**: all named beside the failures above" in md
    assert "same rig, test by test" in md
    data = json.loads((results / "compare.json").read_text())
    assert data["exit_code"] == 1
    assert data["counts"]["new_failure"] == 2 and data["counts"]["measurement_regressions"] == 2
    assert {m["name"] for g in data["groups"] for m in g["measurements"]} == {
        "threshold_sd_bytes", "leak_per_cycle_bytes"}      # load time moved within tolerance
    assert data["runs"]["simfake"]["pytest_exit"] == 1
    page = (results / "report.html").read_text()
    assert page.count('class="night') == 3 and "<script" not in page


def test_nightly_no_tests_collected_is_exit_2(fake, capsys):
    night, results = fake
    assert night(HEALTHY, "2024-05-01T020000", "-k", "no_such_test") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("hil nightly: rig simfake: pytest -> ") and len(err) <= 4, err
    assert err[-2] == "hil nightly: rig simfake: pytest ended (exit 5)"
    assert err[-1].startswith("hil: nightly: pytest on rig simfake: no tests collected (exit 5)")
    assert json.loads((results / "compare.json").read_text())["exit_code"] == 2


def test_nightly_pytest_usage_error_is_exit_2(fake, capsys):
    night, _ = fake
    assert night(HEALTHY, "2024-05-01T020000", "--no-such-option") == 2
    assert "usage error (exit 4)" in capsys.readouterr().err


def test_nightly_bad_options(fake, capsys):
    assert hil_main(["nightly", "--rig", "a", "--results", "r", "--now", "yesterday"]) == 2
    assert "--now 'yesterday'" in capsys.readouterr().err
    assert hil_main(["nightly", "--rig", "a", "--rig", "a", "--results", "r"]) == 2
    assert "named twice" in capsys.readouterr().err


def test_nightly_same_stamp_twice_gets_a_new_dir(fake, capsys):
    night, results = fake
    assert night(HEALTHY, "2024-05-01T020000") == 0
    assert night(HEALTHY, "2024-05-01T020000") == 0
    assert (results / "2024-05-01T020000-simfake-2").is_dir()


def test_nightly_new_rig_is_compared_with_its_kin(fake, capsys):
    """A rig new to the results (renamed, or the regressed build on its own rig) is compared
    with the latest run on the same board and firmware family, and the report says so."""
    night, results = fake
    assert night(HEALTHY, "2024-05-01T020000") == 0
    capsys.readouterr()
    scenario = dict(REGRESSED, firmware={"simfake-b": REGRESSED["firmware"]["simfake"]})
    (results.parent / "scenario.json").write_text(json.dumps(scenario))
    code = hil_main(["nightly", "--rig", "simfake-b", "--results", str(results),
                     "--suites", str(results.parent / "fake_suites"), "--now", "2024-05-02T020000",
                     "--timeout", "120", "--", "-p", "no:hil.plugin", "-p", "no:cacheprovider", "-q"])
    md = capsys.readouterr().out
    assert code == 1
    assert "**New failures (2)**" in md and "Gone tests" not in md and "Added tests" not in md
    assert "first night on rig simfake-b: compared with rig simfake's run" in md
    assert "same board and firmware family, test by test" in md
    page = (results / "report.html").read_text()
    assert page.index("<b>simfake-b</b>") < page.index("<b>simfake</b>")   # worst rig first
