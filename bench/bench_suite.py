"""The whole HIL suites on sim rigs: wall time on one rig, and the farm speed-up on 1, 2 and 4.

One rig: ``python -m pytest suites --rig sim`` as a subprocess from the repository root (the
rig's simulator in its own process, line pacing on as rigs/sim.toml says), timed from spawn to
exit, so Python start-up, collection and the simulator's start are in it. Outcome counts come
from pytest's summary line; a failing suite is reported in the note, never hidden.

Several rigs: bench/bench_farm.py (written by the farm work, imported lazily). The runner uses
``bench_farm.bench_rows(work, smoke) -> list[dict]`` when it has one (each dict: metric, ours,
unit, reference, reference_label, ratio, target ("ratio >= 3"), note); until then the rows say
"not available yet".
"""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import REPO, Row, Section, Target, Timer, missing_row, say

TARGET_ONE_RIG_S = 60.0
TARGET_FARM_SPEEDUP = 3.0
FARM_RIGS = (1, 2, 4)
SMOKE_PATHS = ("suites/test_smoke.py",)
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


def parse_counts(text: str) -> dict[str, int]:
    """Counts from pytest's last summary line ("49 passed, 9 skipped in 38.09s")."""
    for line in reversed(text.strip().splitlines()):
        found = _COUNT.findall(line)
        if found and " in " in line:
            return {("errors" if kind.startswith("error") else kind): int(n) for n, kind in found}
    return {}


def one_rig(work: Path, paths: tuple[str, ...] = ("suites",), rig: str = "sim", timeout: float = 900.0) -> Row:
    results = work / "suite-results"
    # --opt=value: a separate value that is an existing path would move pytest's rootdir guess
    argv = [sys.executable, "-m", "pytest", *paths, f"--rig={rig}", "-q", "-p", "no:cacheprovider",
            f"--hil-results={results}"]
    say(f"suite: {' '.join(argv[1:])}")
    with Timer() as t:
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    counts = parse_counts(proc.stdout)
    tally = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no summary line"
    bad = counts.get("failed", 0) + counts.get("errors", 0)
    note = f"{' '.join(paths)} on rig {rig} (pace line): {tally}"
    if proc.returncode not in (0, 1) or not counts:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        return Row("suite", "suite.one_rig.wall", None, "s", note=f"pytest exit {proc.returncode}: {' | '.join(tail)}",
                   status="error", target=Target("ours", "<", TARGET_ONE_RIG_S))
    if bad:
        note += " (time counts the failing tests too)"
    return Row("suite", "suite.one_rig.wall", t.s, "s", None, "", None, Target("ours", "<", TARGET_ONE_RIG_S), note,
               details={"counts": counts, "exit": proc.returncode, "argv": argv[1:]})


def _target(text: Any) -> Target | None:
    m = re.fullmatch(r"\s*(ratio|ours)\s*(>=|<=|>|<)\s*([0-9.]+)x?\s*", str(text or ""))
    return Target(m.group(1), m.group(2), float(m.group(3))) if m else None


def farm_rows(work: Path, smoke: bool) -> list[Row]:
    """Rows from bench/bench_farm.py when it exists, else placeholders naming what is missing."""
    metrics = [f"suite.farm.{n}_rigs.wall" for n in FARM_RIGS] + [f"suite.farm.speedup_{FARM_RIGS[-1]}_rigs"]
    try:
        farm = importlib.import_module("bench.bench_farm")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.bench_farm":
            raise
        return [missing_row("farm", m, "s" if m.endswith("wall") else "x",
                            "not available yet: bench/bench_farm.py does not exist",
                            Target("ratio", ">=", TARGET_FARM_SPEEDUP) if "speedup" in m else None) for m in metrics]
    fn = getattr(farm, "bench_rows", None)
    if fn is None:
        return [missing_row("farm", m, "", "not available yet: bench/bench_farm.py has no "
                            "bench_rows(work, smoke) for the runner (run it on its own)") for m in metrics]
    say("farm: bench_farm.bench_rows")
    rows = []
    for d in fn(work / "farm", smoke):
        rows.append(Row("farm", str(d["metric"]), d.get("ours"), d.get("unit", ""), d.get("reference"),
                        d.get("reference_label", ""), d.get("ratio"), _target(d.get("target")), d.get("note", ""),
                        status=d.get("status", ""), details=d.get("details", {})))
    return rows


def run(work: Path, smoke: bool = False, farm: bool = True) -> Section:
    sec = Section()
    work.mkdir(parents=True, exist_ok=True)
    with Timer() as total:
        sec.rows.append(one_rig(work, SMOKE_PATHS if smoke else ("suites",)))
        if farm:
            sec.rows.extend(farm_rows(work, smoke))
    sec.seconds = total.s
    return sec
