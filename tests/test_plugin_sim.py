"""End to end: ``pytest --rig sim`` in a subprocess, starting and stopping the simulator itself."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jsonl import read_records
from hil.rig import rig_names

ROOT = Path(__file__).resolve().parent.parent
RIGS = ROOT / "rigs"
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")


def run_pytest(*args: str, cwd: Path = ROOT, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def run_dir(results: Path) -> Path:
    runs = [p for p in results.iterdir() if p.is_dir() and p.name not in ("sim-state", "flash-stamps")]
    assert len(runs) == 1, runs
    return runs[0]


def sim_pid(run: Path) -> int:
    m = re.search(r"simulator pid (\d+)", (run / "logs" / "session.log").read_text())
    assert m, "session log does not name the simulator pid"
    return int(m.group(1))


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def check_smoke(results: Path, rig: str, done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout
    run = run_dir(results)
    records = read_records(run)
    header = records[0]
    assert header["rig"] == rig and header["firmware_version"] and header["port"]
    tests = [r for r in records if r["type"] == "test"]
    assert [r["outcome"] for r in tests] == ["passed"] * 4
    names = {m["name"] for r in tests for m in r["measurements"]}
    assert {"gc_free_bytes", "sys_heap_free_bytes", "gc_heap_size_bytes"} <= names
    assert records[-1]["type"] == "footer" and records[-1]["exitstatus"] == 0
    check_steps(run, records)
    assert gone(sim_pid(run)), "the simulator outlived the session"
    assert (results / "sim-state" / rig / "flash.img").exists()
    from hil.report.runs import find_runs   # the report side reads what the plugin wrote
    runs, skipped = find_runs(results)
    assert skipped == [] and len(runs) == 1 and len(runs[0].tests) == 4


def check_steps(run: Path, records: list[dict]) -> None:
    """What was done to the board is in the run record as timed steps, and in the serial logs."""
    session = records[-1]["steps"]
    assert [s["name"] for s in session if s["depth"] == 0] == ["start"]
    assert {"soft reset"} <= {s["name"] for s in session if s["depth"] == 1}
    tests = {r["nodeid"].split("::")[-1]: r for r in records if r["type"] == "test"}
    steps = tests["test_put_get_on_sd"]["steps"]
    assert [s["name"] for s in steps] == ["put", "get"]
    for step in steps:
        assert step["args"] == {"path": "/sd/hil_smoke.bin"} and step["outcome"] == "passed"
        assert 0 <= step["start"] <= tests["test_put_get_on_sd"]["duration"] and step["duration"] > 0
    assert steps[1]["start"] >= steps[0]["start"] + steps[0]["duration"]
    log = (run / tests["test_put_get_on_sd"]["serial_log"]).read_text()
    assert "step put (path=/sd/hil_smoke.bin): start" in log and "step get (path=/sd/hil_smoke.bin): done in" in log


@pytest.mark.parametrize("rig", ["sim", "sim-rfc2217"])
def test_smoke_suite_on_sim_rigs(tmp_path: Path, rig: str) -> None:
    results = tmp_path / "results"
    done = run_pytest("--rig", rig, "--hil-results", str(results), "suites/test_smoke.py")
    check_smoke(results, rig, done)


@pytest.mark.slow
@pytest.mark.parametrize("rig", [n for n in rig_names(RIGS) if n.startswith("sim") and n not in ("sim", "sim-rfc2217")])
def test_smoke_suite_on_every_other_sim_rig(tmp_path: Path, rig: str) -> None:
    results = tmp_path / "results"
    done = run_pytest("--rig", rig, "--hil-results", str(results), "suites/test_smoke.py")
    check_smoke(results, rig, done)


def test_sim_rig_without_sd_skips_sd_tests(tmp_path: Path) -> None:
    rig_dir = tmp_path / "rigs"
    rig_dir.mkdir()
    text = (RIGS / "sim.toml").read_text().replace('name = "sim"', 'name = "nosd"')
    text = re.sub(r"(\[sim\][^\[]*?)sd = true", r"\1sd = false", text)
    text = text.replace('pace = "line"', 'pace = "off"')
    (rig_dir / "nosd.toml").write_text(text)
    results = tmp_path / "results"
    done = run_pytest("--rig", "nosd", "--rig-dir", str(rig_dir), "--hil-results", str(results),
                      "-rs", "suites/test_smoke.py")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 passed, 1 skipped" in done.stdout
    assert "rig nosd has no SD card" in done.stdout


KILLABLE = '''
import time
from pathlib import Path

def test_1(repl):
    assert repl.eval("6 * 7") == 42

def test_2(device, measure):
    measure("sys_heap_free_bytes", device.memory().sys_heap_free, "bytes")

def test_3_hangs(repl):
    Path({marker!r}).write_text("started")
    time.sleep(60)

def test_4():
    pass
'''


def test_killed_run_keeps_its_record_and_takes_the_simulator_down(tmp_path: Path) -> None:
    marker = tmp_path / "test3.started"
    suite = tmp_path / "suites"
    suite.mkdir()
    (suite / "test_kill.py").write_text(KILLABLE.format(marker=str(marker)))
    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig", "sim",
                             "--rig-dir", str(RIGS), "--hil-results", str(results), "suites"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, "pytest ended before test_3 started"
            assert time.monotonic() < deadline, "test_3 never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    run = run_dir(results)
    records = read_records(run)
    assert [r["type"] for r in records] == ["header", "test", "test"]
    assert [r["nodeid"].split("::")[-1] for r in records[1:]] == ["test_1", "test_2"]
    assert records[2]["measurements"][0]["value"] > 0
    assert records[0]["firmware_version"] == "v0.6.2-75-g973361c0d"
    assert gone(sim_pid(run)), "the simulator outlived the killed pytest"


def test_rigs_check_probe_on_sim() -> None:
    done = subprocess.run([sys.executable, "-m", "hil", "rigs", "check", "sim", "--probe"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "rig sim: ok: Sipeed Maix Bit on simulated (pty, build maixpy-v0.6.2-full)" in out
    assert "probe: firmware v0.6.2-75-g973361c0d" in out
    assert re.search(r"probe: GC heap \d+ bytes, free \d+; system heap free \d+ bytes", out)
    assert "probe: SD card present" in out


def test_rigs_list_and_bad_check() -> None:
    done = subprocess.run([sys.executable, "-m", "hil", "rigs", "list"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert re.search(r"^sim-rfc2217 +\./rigs +maix-bit +sim \(rfc2217\) +sim +maixpy-v0.6.2-full", done.stdout, re.M)
    done = subprocess.run([sys.executable, "-m", "hil", "rigs", "check",
                           "tests/data/rigs_bad/unknown_board.toml"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("hil: tests/data/rigs_bad/unknown_board.toml: rig.board: 'maix-nano' is not "
                                   "one of: maix-bit, maix-dock, maix-go, maixduino, kd233")
