"""Per-test overhead: from a test's start to a ready REPL, on a kept-up board and after a power cycle.

Measured two ways, on simulated boards in their own processes with line pacing on:
- through pytest and the hil plugin, which is what a suite pays: a generated test file of empty
  tests that take the ``device`` fixture (half of them marked ``power_cycle``) runs under
  ``pytest --rig sim``; a conftest beside it records each test's setup phase (pytest's own
  timing), which is exactly test start -> board ready (``ensure_ready()`` or ``power_cycle()``).
  The first test is left out (it also opens the session's board).
- directly on a Board (``Board.ensure_ready()``, ``Board.power_cycle()``), the floor the plugin
  can reach; the ratio is that floor over the pytest figure (1.0 = the plugin adds nothing).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common import RIGS, BenchSim, Row, Section, Timer, attached_board, median, say


@dataclass(frozen=True)
class OverheadConfig:
    warm_tests: int = 12
    cycle_tests: int = 4
    direct_warm: int = 30
    direct_cycles: int = 4


SMOKE = OverheadConfig(warm_tests=4, cycle_tests=2, direct_warm=10, direct_cycles=2)

_CONFTEST = '''\
import json
import os

SETUP = {}


def pytest_runtest_logreport(report):
    if report.when == "setup":
        SETUP[report.nodeid] = [report.duration, report.outcome]


def pytest_sessionfinish(session):
    path = os.environ["BENCH_OVERHEAD_OUT"]
    with open(path + ".part", "w") as f:
        json.dump(SETUP, f)
    os.replace(path + ".part", path)
'''


def _test_file(warm: int, cycle: int) -> str:
    lines = ["import pytest", ""]
    # interleaved as a suite would be: the warm test after a cycled one still finds the board up
    for i in range(max(warm, cycle)):
        if i < warm:
            lines += [f"def test_warm_{i:02d}(device):", "    pass", ""]
        if i < cycle:
            lines += ["@pytest.mark.power_cycle", f"def test_cycle_{i:02d}(device):", "    pass", ""]
    return "\n".join(lines)


def through_pytest(work: Path, cfg: OverheadConfig) -> tuple[list[float], list[float], str]:
    tests = work / "overhead-tests"
    tests.mkdir(parents=True, exist_ok=True)
    (tests / "pytest.ini").write_text("[pytest]\n")          # rootdir here, not the repo's suites
    (tests / "conftest.py").write_text(_CONFTEST)
    (tests / "test_overhead.py").write_text(_test_file(cfg.warm_tests, cfg.cycle_tests))
    out = work / "overhead-setup.json"
    env = dict(os.environ, BENCH_OVERHEAD_OUT=str(out))
    # --opt=value keeps option values out of pytest's rootdir guess (the pytest.ini above is the ini)
    argv = [sys.executable, "-m", "pytest", str(tests), "--rig=sim", f"--rig-dir={RIGS}",
            f"--hil-results={work / 'overhead-results'}", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(argv, cwd=tests, env=env, capture_output=True, text=True, timeout=300)
    if not out.is_file():
        raise RuntimeError(f"pytest for the overhead tests wrote no timings (exit {proc.returncode}): "
                           f"{(proc.stdout + proc.stderr).strip()[-300:]}")
    setup = json.loads(out.read_text())
    first = next(iter(setup), None)
    warm = [d for node, (d, outcome) in setup.items() if "test_warm" in node and node != first and outcome == "passed"]
    cycle = [d for node, (d, outcome) in setup.items() if "test_cycle" in node and node != first and outcome == "passed"]
    return warm, cycle, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def direct(work: Path, cfg: OverheadConfig) -> tuple[list[float], list[float]]:
    warm, cycle = [], []
    with BenchSim(work / "overhead-state") as sim, attached_board(sim, work, log_name="overhead.log") as board:
        for _ in range(cfg.direct_warm):
            with Timer() as t:
                board.lifecycle.ensure_ready()
            warm.append(t.s)
        for _ in range(cfg.direct_cycles):
            with Timer() as t:
                board.lifecycle.power_cycle()
            cycle.append(t.s)
    return warm, cycle


def run(work: Path, cfg: OverheadConfig = OverheadConfig()) -> Section:
    sec = Section()
    work.mkdir(parents=True, exist_ok=True)
    with Timer() as total:
        say("overhead: direct Board.ensure_ready / power_cycle")
        d_warm, d_cycle = direct(work, cfg)
        say("overhead: through pytest --rig sim")
        p_warm, p_cycle, summary = through_pytest(work, cfg)
    for key, label, p, d, what in (
            ("kept_up", "kept-up board", p_warm, d_warm, "ensure_ready(): one raw-REPL round trip"),
            ("power_cycle", "after a power cycle", p_cycle, d_cycle,
             "power_cycle(): power off/on through the sim power driver, boot log at 115200, banner, raw REPL")):
        ours = median(p) if p else None
        floor = median(d) if d else None
        ratio = floor / ours if ours and floor else None
        note = f"pytest setup median of {len(p)} tests; direct: {what}, median of {len(d)}"
        sec.rows.append(Row("overhead", f"overhead.{key}.test_start_to_ready", ours, "s", floor,
                            "Board call alone", ratio, None, note,
                            details={"pytest_setup_s": p, "direct_s": d}))
    sec.log.append(f"overhead pytest run: {summary}")
    sec.seconds = total.s
    return sec
