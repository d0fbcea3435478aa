"""The HIL suites on 1, 2 and 4 simulated rigs under pytest-xdist: wall time and speed-up.

Each run is ``python -m pytest suites --rig-pool sim4 -n N`` from the repository root, timed from
spawn to exit (Python start-up, xdist's workers, collection and every simulator's start are in
it), with fresh results and lock directories so every run starts its rigs the same way. The sim4
rigs (rigs/farm-sim-a..d) pace their lines at the baud like a real UART, so a rig spends most of
a test waiting on the wire, and N rigs should overlap that waiting even beyond the core count.
CPU time of the whole process tree (pytest, workers, simulators) is measured too, to say how
close a run came to the machine's limit:

    utilisation = CPU seconds / (wall seconds x cores)

Near 1.0 the cores, not the rigs, set the pace: more rigs cannot help on this machine.

The runs use the farm command docs/farm.md recommends: ``--dist worksteal`` (HIL tests differ a
lot in length; idle workers take queued tests from busy ones) and, by default, the installed
pytest plugins the suites never use switched off (``-p no:hypothesispytest -p no:labgrid``):
each xdist worker imports every installed plugin, and those two cost about 2 CPU seconds per
process, which on a small machine is most of a worker's start-up. ``--all-plugins`` measures
with them on.

    .venv/bin/python bench/bench_farm.py                  # the full suites on 1, 2, 4 rigs (~2 min)
    .venv/bin/python bench/bench_farm.py --smoke          # suites/test_smoke.py only
    .venv/bin/python bench/bench_farm.py --rigs 1,4 --dist load --all-plugins

``bench_rows(work, smoke)`` gives the same figures to the common runner (python -m bench).
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POOL = "sim4"
RIG_COUNTS = (1, 2, 4)
TARGET_SPEEDUP = 3.0
FULL_PATHS = ("suites",)
SMOKE_PATHS = ("suites/test_smoke.py",)
UNUSED_PLUGINS = ("hypothesispytest", "labgrid")   # entry-point names; skipped when not installed
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


@dataclass
class FarmRun:
    rigs: int
    wall: float
    cpu: float
    exit: int
    counts: dict[str, int] = field(default_factory=dict)
    tail: str = ""
    busiest: float = 0.0          # seconds of tests on the busiest rig (the critical path)
    tests_total: float = 0.0      # seconds of tests summed over every rig
    longest: tuple[float, str] = (0.0, "")

    @property
    def ok(self) -> bool:
        return self.exit in (0, 1) and bool(self.counts)

    @property
    def utilisation(self) -> float:
        return self.cpu / (self.wall * (os.cpu_count() or 1)) if self.wall else float("nan")

    def tally(self) -> str:
        return ", ".join(f"{n} {k}" for k, n in self.counts.items()) or "no summary line"


def parse_counts(text: str) -> dict[str, int]:
    """Counts from pytest's last summary line ("49 passed, 9 skipped in 38.09s")."""
    for line in reversed(text.strip().splitlines()):
        found = _COUNT.findall(line)
        if found and " in " in line:
            return {("errors" if kind.startswith("error") else kind): int(n) for n, kind in found}
    return {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def plugins_off() -> list[str]:
    """``-p no:NAME`` for the installed plugins in UNUSED_PLUGINS."""
    from importlib.metadata import entry_points
    installed = {ep.name for ep in entry_points(group="pytest11")}
    return [arg for name in UNUSED_PLUGINS if name in installed for arg in ("-p", f"no:{name}")]


def run_farm(rigs: int, work: Path, paths: tuple[str, ...], dist: str = "worksteal", lean: bool = True,
             timeout: float = 1200.0) -> FarmRun:
    """One timed pytest run on ``rigs`` rigs of the pool (fresh results and lock dirs)."""
    where = work / f"{rigs}-rigs"
    shutil.rmtree(where, ignore_errors=True)
    argv = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", *(plugins_off() if lean else []),
            "--rig-pool", POOL, "-n", str(rigs), "--dist", dist, "--hil-results", str(where / "results"),
            "--rig-lock-dir", str(where / "locks")]
    print(f"farm: {rigs} rig(s): {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    run = FarmRun(rigs, wall, cpu, proc.returncode, parse_counts(proc.stdout), tail)
    _analyse(run, where / "results")
    return run


def _analyse(run: FarmRun, results: Path) -> None:
    """Per-rig test time from the run records the workers wrote."""
    from hil.errors import ConfigError
    from hil.report.runs import read_record_file
    per_rig: dict[str, float] = {}
    for path in results.glob("*/run*.jsonl"):
        try:
            tests = read_record_file(path).tests
        except ConfigError:
            continue
        for test in tests:
            per_rig[test.rig] = per_rig.get(test.rig, 0.0) + test.duration
            if test.duration > run.longest[0]:
                run.longest = (test.duration, test.nodeid)
    if per_rig:
        run.busiest = max(per_rig.values())
        run.tests_total = sum(per_rig.values())


def measure(work: Path, smoke: bool = False, counts: tuple[int, ...] = RIG_COUNTS,
            dist: str = "worksteal", lean: bool = True) -> list[FarmRun]:
    paths = SMOKE_PATHS if smoke else FULL_PATHS
    return [run_farm(n, work, paths, dist, lean) for n in counts]


def why_short(runs: list[FarmRun], speedup: float) -> str:
    """What held the speed-up back, from what was measured."""
    last, first = runs[-1], runs[0]
    cores = os.cpu_count() or 1
    util = last.utilisation
    if util >= 0.8:
        return (f"CPU-bound: at {last.rigs} rigs the process tree used {last.cpu:.0f} CPU s in {last.wall:.0f} s "
                f"on {cores} cores (utilisation {util:.2f}); one rig needs {first.cpu:.0f} CPU s, so "
                f"{cores} cores cannot finish {last.rigs} rigs' work faster than about "
                f"{last.cpu / cores:.0f} s")
    text = f"not CPU-bound (utilisation {util:.2f})"
    if last.busiest:
        text += (f": the busiest rig ran {last.busiest:.1f} s of tests (longest single test "
                 f"{last.longest[0]:.1f} s, {last.longest[1]}); all rigs together ran {last.tests_total:.0f} s "
                 f"of tests against {first.tests_total:.0f} s on one rig (tests that share a module's "
                 f"cached measurement repeat it when split); start-up and shutdown took "
                 f"{last.wall - last.busiest:.1f} s")
    return text


def rows(runs: list[FarmRun], smoke: bool = False) -> list[dict]:
    """Rows for the common bench runner (bench/bench_suite.py farm_rows)."""
    what = "suites/test_smoke.py" if smoke else "suites"
    out: list[dict] = []
    base = runs[0] if runs and runs[0].ok else None
    for run in runs:
        metric = f"suite.farm.{run.rigs}_rigs.wall"
        if not run.ok:
            out.append({"metric": metric, "ours": None, "unit": "s", "status": "error",
                        "note": f"pytest exit {run.exit}: {run.tail}"})
            continue
        ratio = base.wall / run.wall if base is not None and run is not base else None
        note = (f"{what} on {run.rigs} rig(s) of pool {POOL} under xdist: {run.tally()}; "
                f"CPU {run.cpu:.0f} s, utilisation {run.utilisation:.2f}")
        out.append({"metric": metric, "ours": run.wall, "unit": "s",
                    "reference": base.wall if ratio is not None else None,
                    "reference_label": "1 rig" if ratio is not None else "", "ratio": ratio, "note": note,
                    "details": {"cpu_s": run.cpu, "counts": run.counts, "exit": run.exit}})
    last = runs[-1] if runs else None
    if base is not None and last is not None and last.ok and last is not base:
        speedup = base.wall / last.wall
        note = f"{last.rigs} rigs against 1: {speedup:.2f}x"
        if speedup < TARGET_SPEEDUP:
            note += f"; short of {TARGET_SPEEDUP:g}x: {why_short(runs, speedup)}"
        out.append({"metric": f"suite.farm.speedup_{last.rigs}_rigs", "ours": last.wall, "unit": "s",
                    "reference": base.wall, "reference_label": "1 rig", "ratio": speedup,
                    "target": f"ratio >= {TARGET_SPEEDUP:g}", "note": note})
    return out


def bench_rows(work: Path, smoke: bool = False) -> list[dict]:
    return rows(measure(Path(work), smoke), smoke)


def table(runs: list[FarmRun]) -> str:
    base = runs[0].wall if runs and runs[0].ok else None
    head = (f"{'rigs':>4}  {'wall s':>7}  {'speed-up':>8}  {'CPU s':>6}  {'util':>5}  {'busiest rig s':>13}  "
            f"{'tests s':>7}  outcome")
    lines = [head, "-" * len(head)]
    for run in runs:
        speed = f"{base / run.wall:.2f}x" if base and run.ok else "-"
        lines.append(f"{run.rigs:>4}  {run.wall:>7.1f}  {speed:>8}  {run.cpu:>6.1f}  {run.utilisation:>5.2f}  "
                     f"{run.busiest:>13.1f}  {run.tests_total:>7.1f}  "
                     + (run.tally() if run.ok else f"pytest exit {run.exit}: {run.tail}"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="suites/test_smoke.py only")
    parser.add_argument("--rigs", default=",".join(map(str, RIG_COUNTS)),
                        help="rig counts to run, comma-separated, the first is the reference (default 1,2,4)")
    parser.add_argument("--dist", default="worksteal", help="xdist distribution mode (default worksteal)")
    parser.add_argument("--all-plugins", action="store_true",
                        help=f"keep every installed pytest plugin on (default: {' '.join(plugins_off()) or 'none off'})")
    parser.add_argument("--work", type=Path, default=None, help="keep results here (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    try:
        counts = tuple(int(x) for x in args.rigs.split(",") if x.strip())
    except ValueError:
        parser.error(f"--rigs {args.rigs!r}: expected numbers like 1,2,4")
    if not counts or any(n < 1 or n > 4 for n in counts):
        parser.error(f"--rigs {args.rigs!r}: each between 1 and 4 (pool {POOL} has four rigs)")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-farm-"))
    try:
        runs = measure(work, args.smoke, counts, args.dist, lean=not args.all_plugins)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    plugins = "every installed plugin" if args.all_plugins else " ".join(plugins_off()) or "no plugin off"
    print(f"\n{'suites/test_smoke.py' if args.smoke else 'suites'} on pool {POOL} under xdist "
          f"(--dist {args.dist}, {plugins}), {os.cpu_count()} cores\n")
    print(table(runs))
    for row in rows(runs, args.smoke):
        if row["metric"].startswith("suite.farm.speedup"):
            print(f"\nspeed-up at {runs[-1].rigs} rigs: {row['ratio']:.2f}x (target >= {TARGET_SPEEDUP:g}x): "
                  f"{row['note']}")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
