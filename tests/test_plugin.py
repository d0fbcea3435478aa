"""The pytest plugin, run as a real pytest subprocess against a fake MaixPy REPL on socket://.

The fake (tests/test_repl.py) answers the raw REPL and soft reboots with the MaixPy banner, so
these tests check the plugin's mechanics (fixtures, markers, outcomes, the run record, serial
logs, a killed run) without the simulator. tests/test_plugin_sim.py does it end to end.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jsonl import read_records
from test_repl import FakeRepl

ROOT = Path(__file__).resolve().parent.parent


def rig_file(rig_dir: Path, name: str, port: str, sd: bool = False, power: str = "none") -> None:
    rig_dir.mkdir(parents=True, exist_ok=True)
    (rig_dir / f"{name}.toml").write_text(textwrap.dedent(f"""\
        [rig]
        name = "{name}"
        board = "maix-bit"
        [serial]
        port = "{port}"
        boot_timeout = 2.0
        [power]
        driver = "{power}"
        [firmware]
        profile = "maixpy-v0.6.2-full"
        [storage]
        sd = {str(sd).lower()}
        """))


def run_pytest(cwd: Path, *args: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **popen)


def only_run_dir(results: Path) -> Path:
    runs = [p for p in results.iterdir() if p.is_dir() and p.name != "sim-state"]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture
def fake_board(tmp_path: Path):
    server = FakeRepl(raw_paste="old")
    rig_file(tmp_path / "rigs", "fake", server.url)
    yield server
    server.close()


SUITE = '''
import pytest
from hil.errors import LinkError

def test_pass(repl, measure):
    assert repl.exec("print(6 * 7)") == b"42\\r\\n"
    measure("answer", 42, "count", low=40, high=50)

def test_fail(repl):
    assert repl.eval("1 + 1") == 3

def test_after_failure_board_was_reset(repl):
    assert repl.eval("'fresh'") == "fresh"

def test_measure_out_of_band(measure):
    measure("threshold_sd_bytes", 2_100_000, "bytes", low=2_150_000, high=2_300_000)

def test_infrastructure_error(board):
    raise LinkError("serial port /dev/ttyUSB9: link lost: cable pulled")

@pytest.fixture
def broken_fixture():
    raise RuntimeError("fixture blew up")

def test_fixture_error(broken_fixture):
    pass

@pytest.mark.requires_sd
def test_needs_sd(device):
    pass

@pytest.mark.firmware(accepts=5)
def test_needs_v5(device):
    pass

@pytest.mark.firmware("maixpy-v0.6.2-*", accepts=[3, 4])
def test_full_build_only(firmware):
    assert firmware.name == "maixpy-v0.6.2-full"

@pytest.mark.xfail(reason="known firmware bug")
def test_xfail():
    assert False

@pytest.mark.power_cycle
def test_power_cycle_without_power_control(board):
    assert board.firmware_version == "v0.6.2-75-g973361c0d"
'''


def test_session_outcomes_record_and_logs(tmp_path: Path, fake_board: FakeRepl) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_suite.py").write_text(SUITE)
    results = tmp_path / "results"
    done = run_pytest(tmp_path, "--rig", "fake", "--rig-dir", "rigs", "--hil-results", str(results),
                      "-rA", "suites")
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "hil: rig fake: maix-bit, socket://" in out
    assert "ERROR suites/test_suite.py::test_infrastructure_error" in out   # an error, not a failure
    assert "FAILED suites/test_suite.py::test_fail" in out
    assert "rig fake has no SD card" in out
    assert "rig fake runs maixpy-v0.6.2-full: test needs a build that loads kmodel v5" in out

    run_dir = only_run_dir(results)
    records = read_records(run_dir)
    header, tests, footer = records[0], {r["nodeid"].split("::")[1]: r for r in records[1:-1]}, records[-1]
    assert header["type"] == "header" and header["rig"] == "fake" and header["schema"] == 1
    assert header["firmware_version"] == "v0.6.2-75-g973361c0d"
    assert header["port"] == fake_board.url and header["firmware_profile"] == "maixpy-v0.6.2-full"
    outcomes = {name: r["outcome"] for name, r in tests.items()}
    assert outcomes == {
        "test_pass": "passed", "test_fail": "failed", "test_after_failure_board_was_reset": "passed",
        "test_measure_out_of_band": "failed", "test_infrastructure_error": "broken",
        "test_fixture_error": "broken", "test_needs_sd": "skipped", "test_needs_v5": "skipped",
        "test_full_build_only": "passed", "test_xfail": "xfailed",
        "test_power_cycle_without_power_control": "passed"}
    assert footer["type"] == "footer" and footer["exitstatus"] == 1
    assert footer["counts"] == {"broken": 2, "failed": 2, "passed": 4, "skipped": 2, "xfailed": 1}

    assert tests["test_pass"]["measurements"] == [
        {"name": "answer", "value": 42.0, "unit": "count", "low": 40.0, "high": 50.0, "ok": True}]
    bad = tests["test_measure_out_of_band"]
    assert bad["measurements"][0]["ok"] is False
    assert bad["message"] == ("measurement threshold_sd_bytes = 2100000 bytes is outside its band "
                              "[2150000, 2300000]")
    assert tests["test_infrastructure_error"]["message"].endswith("link lost: cable pulled")
    assert "fixture blew up" in tests["test_fixture_error"]["message"]
    assert tests["test_needs_sd"]["markers"] == ["requires_sd"]
    assert tests["test_fail"]["message"].startswith("AssertionError: assert 2 == 3")
    assert tests["test_pass"]["message"] == "" and "\n" not in tests["test_fail"]["message"]

    log = run_dir / tests["test_pass"]["serial_log"]
    text = log.read_text()
    assert "> print(6 * 7)" in text and "< OK42\\r\\n" in text    # the raw REPL's OK and the output: one line
    after = (run_dir / tests["test_after_failure_board_was_reset"]["serial_log"]).read_text()
    assert "previous test failed: soft reset before this one" in after and "booted: MicroPython" in after
    cycled = (run_dir / tests["test_power_cycle_without_power_control"]["serial_log"]).read_text()
    assert "rig has no power control; soft reset instead" in cycled
    assert (run_dir / "logs" / "session.log").is_file()
    assert list((run_dir / "allure-results").glob("*-result.json"))
    attachments = [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]
    assert any(a.get("attachments") and a["attachments"][0]["name"] == "serial log" for a in attachments)


def test_plugin_is_inert_without_rig(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_hil.py").write_text("def test_hil(board):\n    pass\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_plain.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef board():\n    return 'mine'\n\n"
        "def test_own_board_fixture(board):\n    assert board == 'mine'\n\ndef test_plain():\n    pass\n")
    done = run_pytest(tmp_path, "-rs", "suites", "tests")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 1 skipped" in done.stdout
    assert "no --rig given: HIL tests need a rig (e.g. pytest --rig sim)" in done.stdout
    assert not (tmp_path / "results").exists()


def test_bad_rig_file_is_one_usage_line(tmp_path: Path) -> None:
    rig_file(tmp_path / "rigs", "bad", "tcp://somewhere:1")
    (tmp_path / "test_x.py").write_text("def test_x(board):\n    pass\n")
    done = run_pytest(tmp_path, "--rig", "bad", "--rig-dir", "rigs", "test_x.py")
    assert done.returncode == 4
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"ERROR: {Path('rigs') / 'bad.toml'}: serial.port: 'tcp://somewhere:1': unsupported URL "
                     "scheme 'tcp' (allowed: alt://, cp2110://, hwgrep://, loop://, rfc2217://, socket://, spy:// "
                     "or a device path)"]


def test_missing_port_fails_at_once_naming_it(tmp_path: Path) -> None:
    start = time.monotonic()
    done = run_pytest(ROOT, "--rig", "maixbit", "--hil-results", str(tmp_path / "results"),
                      "suites/test_smoke.py")
    assert done.returncode == 4
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines == ["ERROR: rig maixbit: cannot open serial port /dev/ttyUSB0: no such device "
                     "(is the board plugged in? see ls /dev/serial/by-id/)"]
    assert time.monotonic() - start < 20
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_several_rigs_use_the_first_and_say_so(tmp_path: Path, fake_board: FakeRepl) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(rig):\n    assert rig.name == 'fake'\n")
    done = run_pytest(tmp_path, "--rig", "fake", "--rig", "maixbit", "--rig-dir", "rigs",
                      "--hil-results", "results", "test_x.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "only fake is used (ignored: maixbit)" in done.stdout


KILLABLE = '''
import time
from pathlib import Path

def test_1(repl):
    assert repl.eval("1") == 1

def test_2():
    pass

def test_3(repl, measure):
    measure("sys_heap_free_bytes", 4_000_000, "bytes")

def test_4_hangs():
    Path("{marker}").write_text("started")
    time.sleep(60)

def test_5():
    pass
'''


def test_run_record_survives_sigkill(tmp_path: Path, fake_board: FakeRepl) -> None:
    marker = tmp_path / "test4.started"
    (tmp_path / "test_kill.py").write_text(KILLABLE.format(marker=marker))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig", "fake",
                             "--rig-dir", "rigs", "--hil-results", "results", "test_kill.py"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "pytest ended before test_4 started"
            assert time.monotonic() < deadline, "test_4 never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    run_dir = only_run_dir(tmp_path / "results")
    records = read_records(run_dir)
    assert [r["type"] for r in records] == ["header", "test", "test", "test"]   # no footer: killed
    assert [r["nodeid"] for r in records[1:]] == ["test_kill.py::test_1", "test_kill.py::test_2",
                                                  "test_kill.py::test_3"]
    assert all(r["outcome"] == "passed" for r in records[1:])
    assert records[3]["measurements"][0]["name"] == "sys_heap_free_bytes"
    try:
        from hil.report.runs import load_run   # the report side reads a killed run too
    except ImportError:
        return
    run = load_run(run_dir)
    assert len(run.tests) == 3
