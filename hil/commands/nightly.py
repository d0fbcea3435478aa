"""`hil nightly --rig NAME [--rig ...] --results DIR [--suites PATH] [-- extra pytest args]`.

For each rig: run the suites in a subprocess,
``python -m pytest [SUITES] --rig NAME --hil-results DIR/<YYYY-MM-DD>T<HHMMSS>-<rig> ...`` (without
--suites, what pytest runs by default here: its testpaths, else ./suites, else the shipped
suites), then
compare every new run with the previous night of the same rig (the latest earlier run of that rig
that finished; a killed one only if nothing finished), and write DIR/compare.md, DIR/compare.json
and DIR/report.html (each replaced atomically). Exits with the comparison's code: 0 no regression,
1 regression; 2 (with a one-line reason on stderr) when pytest crashed, collected no tests, timed
out, or wrote no run record. The other rigs are still compared and reported.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from hil.commands.nightly_watch import RunWatch
from hil.errors import ConfigError
from hil.report.compare import DEFAULT_FLAKY_WINDOW, compare_runs
from hil.report.files import write_atomic
from hil.report.html import render_html
from hil.report.markdown import render_markdown
from hil.report.matching import previous_for
from hil.report.runs import Run, find_runs, load_run, locate_run, same_run
from hil.report.tolerance import Tolerances

# pytest's exit codes that mean the run itself went wrong (not "some tests failed").
PYTEST_TROUBLE = {2: "interrupted", 3: "internal error", 4: "usage error",
                  5: "no tests collected"}
DEFAULT_TIMEOUT_S = 6 * 3600
WATCH_S = 1.0            # how often a running rig's record is read for progress lines
STAMP_FORMAT = "%Y-%m-%dT%H%M%S"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "nightly", help="run the suites on rigs, compare with last night, write reports",
        description="Run the suites on each rig, store each run under a dated name, compare "
                    "with the previous night of the same rig and write compare.md, compare.json "
                    "and report.html into the results directory. Exit 0: no regression, "
                    "1: regression, 2: the run itself failed (crash, nothing collected).")
    p.add_argument("--rig", action="append", required=True, metavar="NAME",
                   help="rig to run on (repeatable)")
    p.add_argument("--results", required=True, metavar="DIR",
                   help="results directory holding every night's runs and the reports")
    p.add_argument("--suites", default=None, metavar="PATH",
                   help="suites to run (default: what pytest runs here by default: its testpaths, "
                        "else ./suites, else the suites shipped with k210-hil)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="rigs run at the same time (default 1)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help=f"per rig; pytest is killed after this (default {DEFAULT_TIMEOUT_S})")
    p.add_argument("--now", metavar="YYYY-MM-DDTHHMMSS",
                   help="the time to name the runs by (default: now, local time)")
    p.add_argument("--flaky-window", type=int, default=DEFAULT_FLAKY_WINDOW, metavar="N",
                   help=f"nights looked at for flakiness (default {DEFAULT_FLAKY_WINDOW})")
    p.add_argument("--tolerance", action="append", default=[], metavar="KEY=SPEC",
                   help="as for `hil report compare`")
    p.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                   help="extra arguments passed to pytest after --")
    p.set_defaults(func=cmd_nightly)


@dataclass
class RigRun:
    rig: str
    run_dir: Path
    console: Path
    proc: subprocess.Popen | None = None
    started: float = 0.0
    returncode: int | None = None
    problem: str = ""            # one line when the run itself failed
    run: Run | None = None
    watch: RunWatch | None = None


def _stamp(now: str | None) -> str:
    if now is None:
        return datetime.now().strftime(STAMP_FORMAT)
    try:
        return datetime.strptime(now, STAMP_FORMAT).strftime(STAMP_FORMAT)
    except ValueError:
        raise ConfigError(f"--now {now!r}: expected YYYY-MM-DDTHHMMSS, e.g. 2024-05-02T020000") \
            from None


def _pytest_argv(suites: str | None, rig: str, run_dir: Path, extra: list[str]) -> list[str]:
    # --opt=value: pytest picks its ini file before the plugin's options exist, and would take a
    # separate value for a test path (and miss pytest.ini's testpaths)
    return [sys.executable, "-m", "pytest", *([suites] if suites else []), f"--rig={rig}",
            f"--hil-results={run_dir}", *extra]


def _start(r: RigRun, argv: list[str]) -> None:
    r.run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(r.console, "wb") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        log.flush()
        # Own session, so a timeout kills pytest and everything it started (simulators too).
        r.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    r.started = time.monotonic()


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _say(lines: list[str]) -> None:
    for line in lines:
        print(f"hil nightly: {line}", file=sys.stderr, flush=True)


def _run_all(runs: list[RigRun], argvs: dict[str, list[str]], jobs: int, timeout: float) -> None:
    pending = list(runs)
    active: list[RigRun] = []
    last_poll = 0.0
    try:
        while pending or active:
            while pending and len(active) < jobs:
                r = pending.pop(0)
                _say([f"rig {r.rig}: pytest -> {r.run_dir}"])
                _start(r, argvs[r.rig])
                r.watch = RunWatch(r.rig, r.run_dir, r.console)
                active.append(r)
            time.sleep(0.2)
            if time.monotonic() - last_poll >= WATCH_S:
                last_poll = time.monotonic()
                for r in active:
                    _say(r.watch.poll() if r.watch else [])
            for r in list(active):
                assert r.proc is not None
                code = r.proc.poll()
                if code is None and time.monotonic() - r.started > timeout:
                    _kill(r.proc)
                    r.returncode = r.proc.returncode
                    r.problem = f"pytest on rig {r.rig}: timed out after {timeout:g} s, killed"
                    active.remove(r)
                elif code is not None:
                    r.returncode = code
                    active.remove(r)
                else:
                    continue
                _say((r.watch.finish() if r.watch else []) + [f"rig {r.rig}: pytest ended (exit {r.returncode})"])
    finally:
        for r in active:  # interrupted: leave nothing running
            if r.proc is not None and r.proc.poll() is None:
                _kill(r.proc)


def locate_run_dir(run_dir: Path) -> Path | None:
    """The run pytest wrote under ``--hil-results run_dir`` (the plugin adds a <run_id> level)."""
    try:
        return locate_run(run_dir)
    except ConfigError:
        return None


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(t.strip() for t in text[-lines:] if t.strip())


def _finish(r: RigRun) -> None:
    """Check one finished pytest: set r.run, or r.problem with a one-line reason."""
    if r.problem:
        return
    code = r.returncode
    if code is not None and code < 0:
        r.problem = f"pytest on rig {r.rig}: killed by signal {-code} (log {r.console})"
        return
    if code in PYTEST_TROUBLE:
        last = _tail(r.console)
        r.problem = (f"pytest on rig {r.rig}: {PYTEST_TROUBLE[code]} (exit {code})"
                     + (f": {last}" if last else "") + f" (log {r.console})")
        return
    if code not in (0, 1):
        r.problem = f"pytest on rig {r.rig}: exit {code} (log {r.console})"
        return
    where = locate_run_dir(r.run_dir)
    if where is None:
        r.problem = (f"pytest on rig {r.rig}: exit {code} but no run record in {r.run_dir} "
                     f"(is the hil plugin loaded?)")
        return
    try:
        r.run = load_run(where)
    except ConfigError as exc:
        r.problem = f"pytest on rig {r.rig}: unreadable run record: {exc}"
        return
    if not r.run.tests:
        r.problem = f"pytest on rig {r.rig}: the run record holds no tests ({where})"
        r.run = None


def cmd_nightly(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be at least 1")
    if args.timeout <= 0:
        raise ConfigError(f"--timeout {args.timeout}: must be positive")
    if len(set(args.rig)) != len(args.rig):
        raise ConfigError(f"--rig: a rig is named twice ({', '.join(args.rig)})")
    tolerances = Tolerances.from_options(args.tolerance)
    results = Path(args.results)
    extra = list(args.pytest_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    stamp = _stamp(args.now)
    results.mkdir(parents=True, exist_ok=True)
    runs: list[RigRun] = []
    argvs: dict[str, list[str]] = {}
    for rig in args.rig:
        name = f"{stamp}-{rig}"
        run_dir = results / name
        n = 2
        while run_dir.exists() or (results / f"{run_dir.name}.console.log").exists():
            run_dir = results / f"{name}-{n}"
            n += 1
        r = RigRun(rig=rig, run_dir=run_dir, console=results / f"{run_dir.name}.console.log")
        argvs[rig] = _pytest_argv(args.suites, rig, run_dir, extra)
        runs.append(r)
    _run_all(runs, argvs, args.jobs, args.timeout)
    for r in runs:
        _finish(r)

    good = [r for r in runs if r.run is not None]
    history, skipped = find_runs(results)
    history = [h for h in history if not any(r.run and same_run(h, r.run) for r in runs)]
    olds: list[Run] = []
    news: list[Run] = []
    pairs: dict[str, str] = {}
    notes: list[str] = list(skipped)
    for r in good:
        assert r.run is not None
        # The rig's own previous night; for a new or renamed rig, the latest earlier run on
        # the same board and firmware family (matching.previous_for), tonight's earlier runs
        # of other rigs included, as the page (report.html) does.
        found = previous_for(history + [g.run for g in good if g.run is not None], r.rig, r.run)
        if found is None:
            notes.append(f"first night on rig {r.rig}: no earlier run on it or on the same "
                         f"board and firmware family to compare with")
            continue
        prev, prev_rig = found
        if prev_rig != r.rig:
            notes.append(f"first night on rig {r.rig}: compared with rig {prev_rig}'s run "
                         f"{prev.run_id} (same board and firmware family)")
        olds.append(prev.only_rig(prev_rig))
        news.append(r.run.only_rig(r.rig))
        pairs[r.rig] = prev_rig
    for r in runs:
        if r.problem:
            notes.append(r.problem)

    code = 0
    if news:
        comparison = compare_runs(olds, news, history=history, match_by="auto",
                                  tolerances=tolerances, flaky_window=args.flaky_window,
                                  rig_pairs=pairs)
        comparison = replace(comparison, notes=comparison.notes + tuple(notes))
        code = comparison.exit_code
        md = render_markdown(comparison)
        js = comparison.to_json()
    else:
        md = ("## HIL night-vs-night comparison\n\n**Nothing to compare**\n\n"
              + "".join(f"- {n}\n" for n in notes))
        js = {"schema": 1, "regression": False, "exit_code": 0, "groups": [], "notes": notes}
    js["runs"] = {r.rig: {"run_dir": str(r.run_dir), "pytest_exit": r.returncode,
                          "problem": r.problem} for r in runs}
    problems = [r.problem for r in runs if r.problem]
    if problems:
        js["exit_code"] = 2
    write_atomic(results / "compare.md", md)
    write_atomic(results / "compare.json", json.dumps(js, indent=1) + "\n")
    all_runs, page_notes = find_runs(results)
    if all_runs:
        write_atomic(results / "report.html", render_html(all_runs, notes=page_notes))
    sys.stdout.write(md)
    if problems:
        for p in problems:
            print(f"hil: nightly: {p}", file=sys.stderr)
        return 2
    return code

