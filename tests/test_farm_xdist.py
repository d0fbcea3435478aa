"""Several simulated rigs under pytest-xdist: one rig per worker, one merged run, rig pools."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hil.farm.claim import lock_key
from hil.farm.lock import RigLock
from jsonl import read_records
from hil.rig import load_rig

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("xdist", reason="pytest-xdist is not installed")
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")


def run_pytest(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--hil-results", str(tmp_path / "results"), "--rig-lock-dir", str(tmp_path / "locks"),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def the_run(results: Path) -> Path:
    runs = [p for p in results.iterdir() if p.is_dir() and p.name not in ("sim-state", "flash-stamps")]
    assert len(runs) == 1, runs
    return runs[0]


def test_two_rigs_two_workers_one_run(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--rig", "farm-sim-a", "--rig", "farm-sim-b", "-n", "2", "suites/test_smoke.py")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout
    run = the_run(tmp_path / "results")
    files = sorted(p.name for p in run.glob("run*.jsonl"))
    assert files == ["run-gw0.jsonl", "run-gw1.jsonl"]
    headers = {}
    for name in files:
        records = read_records(run / name)
        header = records[0]
        assert header["type"] == "header" and header["worker"] == name[4:-6]
        assert header["run_id"] == run.name
        assert header["firmware_version"] == "v0.6.2-75-g973361c0d"   # from the banner
        assert records[-1]["type"] == "footer"
        headers[header["worker"]] = header["rig"]
    assert sorted(headers.values()) == ["farm-sim-a", "farm-sim-b"]   # each worker its own rig
    # the report side merges the workers into one run of 4 tests
    from hil.report.runs import find_runs
    runs, skipped = find_runs(tmp_path / "results")
    assert skipped == [] and len(runs) == 1 and len(runs[0].tests) == 4
    # every test's serial log is in the one logs/ dir, one session log per worker
    logs = {p.name for p in (run / "logs").iterdir()}
    assert {"session-gw0.log", "session-gw1.log"} <= logs and len(logs) == 6
    # allure metadata from both workers, merged
    from hil.report.allure_env import read_environment
    env = read_environment(run / "allure-results" / "environment.properties")
    assert sorted(env["rig"].split(", ")) == ["farm-sim-a", "farm-sim-b"]
    assert env["firmware_version"] == "v0.6.2-75-g973361c0d" and env["hil_version"]
    assert (run / "allure-results" / "categories.json").is_file()
    assert not list((tmp_path / "locks").glob("*.lock")), "the run left rigs locked"


def test_pool_spreads_over_the_free_rigs(tmp_path: Path) -> None:
    results = tmp_path / "results"
    busy_rig = load_rig("farm-sim-a", ROOT / "rigs")
    other = RigLock(tmp_path / "locks", lock_key(busy_rig, results), busy_rig.name, ttl=300)
    other.acquire()        # someone else has farm-sim-a
    try:
        done = run_pytest(tmp_path, "--rig-pool", "sim4", "-n", "4", "suites/test_smoke.py")
    finally:
        other.release()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "created: 3/3 workers" in done.stdout           # -n 4 trimmed to the three free rigs
    run = the_run(results)
    assert run.name.endswith("-sim4")
    rigs = sorted(read_records(p)[0]["rig"] for p in run.glob("run-*.jsonl"))
    assert rigs == ["farm-sim-b", "farm-sim-c", "farm-sim-d"]
    tests = [r for p in run.glob("run-*.jsonl") for r in read_records(p) if r["type"] == "test"]
    assert sorted(r["outcome"] for r in tests) == ["passed"] * 4


def test_pool_with_every_rig_busy_is_one_line(tmp_path: Path) -> None:
    results = tmp_path / "results"
    locks = []
    for rig in ("farm-sim-a", "farm-sim-b", "farm-sim-c", "farm-sim-d"):
        spec = load_rig(rig, ROOT / "rigs")
        lock = RigLock(tmp_path / "locks", lock_key(spec, results), spec.name, ttl=300, run="nightly-7")
        lock.acquire()
        locks.append(lock)
    try:
        done = run_pytest(tmp_path, "--rig-pool", "sim4", "-n", "2", "suites/test_smoke.py", timeout=60)
    finally:
        for lock in locks:
            lock.release()
    assert done.returncode == 4
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("ERROR: no free rig after waiting 0 s (--rig-wait): farm-sim-a held by ")
    assert all(f"{rig} held by" in line for rig in ("farm-sim-b", "farm-sim-c", "farm-sim-d"))
    assert "run nightly-7" in line
    assert not (results.exists() and any(p for p in results.iterdir() if p.name != "sim-state"))


def test_bad_pool_and_rig_pool_usage_errors(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--rig-pool", "nope", "suites/test_smoke.py", timeout=60)
    assert done.returncode == 4
    assert "rig pool 'nope' not found" in done.stderr and "known pools: sim4" in done.stderr
    done = run_pytest(tmp_path, "--rig", "sim", "--rig-pool", "sim4", "suites/test_smoke.py", timeout=60)
    assert done.returncode == 4 and "--rig and --rig-pool: give one or the other" in done.stderr


def test_a_rig_that_cannot_open_breaks_only_its_workers_tests(tmp_path: Path) -> None:
    import socket
    import textwrap

    from test_repl import FakeRepl

    good = FakeRepl(raw_paste="old")
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    rig_dir = tmp_path / "rigs"
    rig_dir.mkdir()
    for name, port in (("good", good.url), ("dead", f"socket://127.0.0.1:{dead_port}")):
        (rig_dir / f"{name}.toml").write_text(textwrap.dedent(f"""\
            [rig]
            name = "{name}"
            board = "maix-bit"
            [serial]
            port = "{port}"
            boot_timeout = 2.0
            [power]
            driver = "none"
            [firmware]
            profile = "maixpy-v0.6.2-full"
            [storage]
            sd = false
            """))
    (tmp_path / "test_two.py").write_text(
        "def test_one(repl):\n    assert repl.eval('1') == 1\n\n"
        "def test_two(repl):\n    assert repl.eval('2') == 2\n")
    try:
        done = run_pytest(tmp_path, "--rig-dir", str(rig_dir), "--rig", "good", "--rig", "dead", "-n", "2",
                          "--dist", "each", str(tmp_path / "test_two.py"), timeout=120)
    finally:
        good.close()
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed, 2 errors" in done.stdout
    run = the_run(tmp_path / "results")
    by_rig = {}
    for path in run.glob("run-*.jsonl"):
        records = read_records(path)
        by_rig[records[0]["rig"]] = [r for r in records if r["type"] == "test"]
    assert [t["outcome"] for t in by_rig["good"]] == ["passed", "passed"]
    assert [t["outcome"] for t in by_rig["dead"]] == ["broken", "broken"]
    assert all(f"rig dead: cannot open serial port socket://127.0.0.1:{dead_port}" in t["message"]
               for t in by_rig["dead"]), by_rig["dead"][0]["message"]
