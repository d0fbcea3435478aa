"""End to end: every fault of the matrix in one ``pytest --rig`` run on the simulator.

``tests/data/faults/fault_matrix_suite.py`` is run in a subprocess on a sim rig (pty, pace off,
boot timeout 3 s); each fault test arms its fault through the control socket. Then, one test
here per fault, the run record is read: the faulted test is there with the right outcome
(broken when the rig was at fault, failed when the firmware was), a one-line message, its
serial log, a bounded duration; and the test after it passed on the recovered board.
docs/faults.md is the table of these results.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jsonl import read_records

ROOT = Path(__file__).resolve().parent.parent
SUITE = Path(__file__).resolve().parent / "data" / "faults" / "fault_matrix_suite.py"
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")

BOOT_TIMEOUT = 3.0


def make_rig(rig_dir: Path, name: str, transport: str = "pty", pace: str = "off") -> None:
    text = (ROOT / "rigs" / "sim.toml").read_text()
    text = text.replace('name = "sim"', f'name = "{name}"')
    text = text.replace("boot_timeout = 10.0", f"boot_timeout = {BOOT_TIMEOUT}")
    text = text.replace('pace = "line"', f'pace = "{pace}"')
    text = text.replace('transport = "pty"', f'transport = "{transport}"')
    rig_dir.mkdir(parents=True, exist_ok=True)
    (rig_dir / f"{name}.toml").write_text(text)


class Run:
    def __init__(self, base: Path, done: subprocess.CompletedProcess) -> None:
        self.done = done
        runs = [p for p in (base / "results").iterdir() if p.is_dir() and p.name not in ("sim-state", "flash-stamps")]
        assert len(runs) == 1, (runs, done.stdout[-3000:], done.stderr[-2000:])
        self.dir = runs[0]
        self.records = read_records(self.dir)
        self.tests = {r["nodeid"].split("::")[-1]: r for r in self.records if r["type"] == "test"}
        self.state = base / "results" / "sim-state"

    def test(self, name: str) -> dict:
        assert name in self.tests, (name, sorted(self.tests), self.done.stdout[-3000:])
        return self.tests[name]

    def log(self, name: str) -> str:
        rec = self.test(name)
        assert rec["serial_log"], f"{name}: no serial log in the record"
        return (self.dir / rec["serial_log"]).read_text(errors="replace")


def run_suite(base: Path, rig: str, suite_text: str, *extra: str, timeout: float = 400) -> Run:
    (base / "suites").mkdir(parents=True, exist_ok=True)
    (base / "suites" / "test_matrix.py").write_text(suite_text)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rig", rig,
                           "--rig-dir", str(base / "rigs"), "--hil-results", str(base / "results"),
                           *extra, "suites"], cwd=base, capture_output=True, text=True, timeout=timeout)
    return Run(base, done)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> Run:
    base = tmp_path_factory.mktemp("matrix")
    make_rig(base / "rigs", "faulty")
    return run_suite(base, "faulty", SUITE.read_text())


def check_fault(run: Run, name: str, outcome: str, message: str | re.Pattern, after: str | None,
                max_s: float) -> dict:
    rec = run.test(name)
    assert rec["outcome"] == outcome, (name, rec["outcome"], rec["message"], rec["longrepr"][-2000:])
    msg = rec["message"]
    assert "\n" not in msg and msg.strip() == msg
    if outcome != "passed":
        assert msg, f"{name}: no message"
        if isinstance(message, str):
            assert message in msg, (name, msg)
        else:
            assert message.search(msg), (name, msg)
    assert "Traceback (most recent call last)" not in msg
    assert rec["duration"] < max_s, (name, rec["duration"])
    assert run.log(name).strip(), f"{name}: empty serial log"
    if after is not None:
        nxt = run.test(after)
        assert nxt["outcome"] == "passed", (after, nxt["outcome"], nxt["message"])
    return rec


pytestmark = pytest.mark.slow


def test_every_test_is_in_the_record(matrix):
    names = re.findall(r"^def (test_\w+)", SUITE.read_text(), re.M)
    assert sorted(matrix.tests) == sorted(names)
    footer = matrix.records[-1]
    assert footer["type"] == "footer"
    assert sum(footer["counts"].values()) == len(names)
    assert "taken out of service" not in matrix.done.stdout   # isolated faults never add up


def test_hang(matrix):
    check_fault(matrix, "test_hang", "broken", "ReplProtocolError", "test_after_hang", 10)
    assert "recovered by rung" in matrix.log("test_after_hang")


def test_hang_after_bytes(matrix):
    check_fault(matrix, "test_hang_after_bytes", "broken", "ReplProtocolError",
                "test_after_hang_after_bytes", 15)


def test_reset_mid_upload(matrix):
    check_fault(matrix, "test_upload_cut_once", "passed", "", None, 30)
    assert "try 1 failed" in matrix.log("test_upload_cut_once")
    rec = check_fault(matrix, "test_upload_cut_every_time", "broken",
                      "TransferError: put /sd/cut.bin", "test_after_upload_cut", 60)
    assert "no verified copy after 3 tries" in rec["message"]
    sd = next(matrix.state.glob("*/sd"))
    assert not (sd / "cut.bin").exists()
    assert (sd / "once.bin").stat().st_size == 6000


def test_corruption(matrix):
    rec = check_fault(matrix, "test_corrupt_code", "broken", "", "test_after_corrupt_code", 20)
    assert rec["message"].startswith(("InfrastructureError", "ReplProtocolError", "TransferError")), rec["message"]
    rec = check_fault(matrix, "test_corrupt_upload", "broken", "TransferError", "test_after_corrupt_upload", 60)
    assert "after 3 tries" in rec["message"]


def test_dropped_bytes(matrix):
    check_fault(matrix, "test_drop", "broken", "", "test_after_drop", 20)


def test_port_vanishes(matrix):
    check_fault(matrix, "test_port_vanishes", "broken", "link lost", "test_after_port_vanishes", 10)
    assert "recovered by rung 1 (reopen link)" in matrix.log("test_after_port_vanishes")


def test_brownout_during_kpu_load(matrix):
    check_fault(matrix, "test_brownout_during_kpu_load", "broken", "the board rebooted",
                "test_after_brownout", 15)


def test_sd_removed(matrix):
    check_fault(matrix, "test_sd_removed", "broken", "the SD card is not readable", "test_after_sd_removed", 15)


def test_flash_write_error(matrix):
    check_fault(matrix, "test_flash_write_error", "broken", "IspError", "test_after_flash_write_error", 60)


def test_isp_never_greets(matrix):
    check_fault(matrix, "test_isp_never_greets", "broken", "ROM greeting", "test_after_isp_never_greets", 30)


def test_slow_boot(matrix):
    check_fault(matrix, "test_slow_boot", "broken", "BootTimeout", "test_after_slow_boot", 20)


def test_main_never_returns(matrix):
    check_fault(matrix, "test_main_never_returns", "passed", "", None, 20)
    assert "interrupting boot.py/main.py with Ctrl-C" in matrix.log("test_main_never_returns")
    check_fault(matrix, "test_main_never_returns_ctrl_c_off", "broken", "BootTimeout",
                "test_after_main_never_returns", 20)


def test_garbage_at_boot(matrix):
    check_fault(matrix, "test_garbage_at_boot", "passed", "", None, 20)
    assert re.search(r"\\x[89a-f][0-9a-f]", matrix.log("test_garbage_at_boot"))


def test_firmware_failure_is_still_a_failure(matrix):
    rec = check_fault(matrix, "test_firmware_failure_stays_a_failure", "failed", "assert 42 == 43", None, 10)
    assert "link check" not in rec["longrepr"]


RFC2217_SUITE = '''
import pytest
from k210sim.control import ControlClient

@pytest.fixture
def fault(board):
    ctl = ControlClient(board.sim.endpoints["control"])
    yield lambda name, **kw: ctl.fault(name, **kw)
    ctl.fault("clear")

def test_connection_closed(repl, fault):
    fault("disconnect", duration=1.0, port="rfc2217")
    repl.exec("print('still there?')", timeout=2.0)

def test_after_connection_closed(repl):
    assert repl.eval("6 * 7") == 42
'''


def test_rfc2217_connection_closed(tmp_path):
    make_rig(tmp_path / "rigs", "remote", transport="rfc2217")
    run = run_suite(tmp_path, "remote", RFC2217_SUITE)
    check_fault(run, "test_connection_closed", "broken", "LinkError", "test_after_connection_closed", 10)
    assert "recovered by rung 1 (reopen link)" in run.log("test_after_connection_closed")
