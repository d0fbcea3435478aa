"""`hil report compare OLD NEW` and `hil report html DIR -o report.html`.

compare exits 0 when nothing regressed, 1 on a regression, 2 on bad input (one line on stderr
naming the file and what is wrong, via hil.cli).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from hil.errors import ConfigError, HilError
from hil.report.compare import DEFAULT_FLAKY_WINDOW, MATCH_BY, compare_runs
from hil.report.files import write_atomic
from hil.report.markdown import render_markdown
from hil.report.runs import Run, find_runs, load_run
from hil.report.tolerance import Tolerances


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="compare nights, draw the trend page",
                              description="Reports over run records (see docs/reports.md).")
    sub = p.add_subparsers(dest="report_cmd", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])

    c = sub.add_parser("compare", help="what changed between two runs; exit 1 on a regression",
                       description="Compare two runs (run directories or run.jsonl files). "
                                   "Exit 0: no regression, 1: regression, 2: bad input or a "
                                   "killed run.")
    c.add_argument("old", metavar="OLD", help="the earlier run (directory or .jsonl)")
    c.add_argument("new", metavar="NEW", help="the later run (directory or .jsonl)")
    c.add_argument("--history", metavar="DIR",
                   help="results directory of older runs, for flaky detection")
    c.add_argument("--flaky-window", type=int, default=DEFAULT_FLAKY_WINDOW, metavar="N",
                   help=f"nights looked at for flakiness, NEW included (default {DEFAULT_FLAKY_WINDOW})")
    c.add_argument("--match-by", choices=MATCH_BY, default="auto",
                   help="auto (default): a rig with the rig of the same name, else with the rig "
                        "on the same board and firmware family, test by test; rig: same rig name "
                        "only; firmware: same firmware profile; test: test id only, any rig and "
                        "firmware against any other")
    c.add_argument("--allow-incomplete", action="store_true",
                   help="compare a run that was killed (no footer) instead of refusing it "
                        "(exit 2): its missing tests are listed as not reached")
    c.add_argument("--tolerance", action="append", default=[], metavar="KEY=SPEC",
                   help="KEY is a unit (bytes, s, count) or a measurement name; SPEC is ABS, "
                        "REL%%, ABS,REL%% (larger) or ABS+REL%% (sum), e.g. bytes=8KiB,2%% "
                        "or s=50ms+20%%; repeatable")
    c.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    c.add_argument("--markdown-out", metavar="FILE", help="also write the Markdown here")
    c.add_argument("--json-out", metavar="FILE", help="also write the JSON here")
    c.set_defaults(func=cmd_compare)

    h = sub.add_parser("html", help="one self-contained HTML page of many nights",
                       description="Render every run under DIR as one static page: a status "
                                   "grid per rig and a plot per measurement.")
    h.add_argument("dir", metavar="DIR", help="results directory holding run directories")
    h.add_argument("-o", "--output", required=True, metavar="FILE", help="the .html to write")
    h.add_argument("--last", type=int, default=30, metavar="N",
                   help="only the last N runs per rig (default 30)")
    h.add_argument("--title", default="K210 HIL nightly", help="page title")
    h.add_argument("--key-figure", action="append", default=[], metavar="NAME",
                   help="a measurement to chart per rig on the first screen (repeatable; "
                        "default: the memory thresholds from SD and flash and the leak per "
                        "cycle; the suite wall time is always charted)")
    h.set_defaults(func=cmd_html)

    a = sub.add_parser("allure-config", help="write an Allure 3 config with the hil categories",
                       description="Write allurerc.json for `allure generate --config`: Allure 3 "
                                   "reads categories from its config, not from categories.json.")
    a.add_argument("-o", "--output", default="allurerc.json", metavar="FILE")
    a.add_argument("--name", default="K210 HIL", help="report name")
    a.add_argument("--multi-file", action="store_true",
                   help="a report directory of many files instead of one index.html")
    a.set_defaults(func=cmd_allure_config)


def _no_traceback(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A report command never ends in a traceback or in exit 1 (which means "regression"):
    anything unexpected is one line and exit 2. HIL_DEBUG=1 shows the traceback."""
    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (HilError, KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - the point: one line, exit 2
            if os.environ.get("HIL_DEBUG"):
                raise
            what = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise ConfigError(f"report {args.report_cmd}: internal error ({what}); this is a "
                              f"bug in hil, not a regression (HIL_DEBUG=1 shows the "
                              f"traceback)") from None
    return run


def _complete(run: Run, side: str) -> None:
    if run.finished:
        return
    cut = next((n for n in run.notes if "cut short" in n), "")
    where = cut.split(": last line", 1)[0] if cut else str(run.path)
    raise ConfigError(f"{where}: {side} run {run.run_id} was killed (no footer"
                      + (", last line cut short" if cut else "")
                      + f"; {len(run.tests)} tests recorded): comparing it would call the rest "
                        f"gone; use --allow-incomplete to compare what it holds")


@_no_traceback
def cmd_compare(args: argparse.Namespace) -> int:
    tolerances = Tolerances.from_options(args.tolerance)
    old = load_run(args.old)
    new = load_run(args.new)
    if not args.allow_incomplete:
        _complete(old, "OLD")
        _complete(new, "NEW")
    history, skipped = ([], [])
    if args.history:
        history, skipped = find_runs(args.history)
    comparison = compare_runs(old, new, history=history, match_by=args.match_by,
                              tolerances=tolerances, flaky_window=args.flaky_window)
    if skipped:
        comparison = replace(comparison, notes=comparison.notes + tuple(skipped))
    md = render_markdown(comparison)
    js = json.dumps(comparison.to_json(), indent=1) + "\n"
    if args.markdown_out:
        write_atomic(Path(args.markdown_out), md)
    if args.json_out:
        write_atomic(Path(args.json_out), js)
    sys.stdout.write(js if args.json else md)
    return comparison.exit_code


@_no_traceback
def cmd_html(args: argparse.Namespace) -> int:
    from hil.report.html import render_html  # the page code is only needed here
    if args.last < 1:
        raise ConfigError(f"--last {args.last}: must be at least 1")
    runs, skipped = find_runs(args.dir)
    if not runs:
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise ConfigError(f"{args.dir}: no readable runs{why}")
    page = render_html(runs, title=args.title, last=args.last, notes=skipped,
                       key_figures=tuple(args.key_figure) or None)
    out = Path(args.output)
    write_atomic(out, page)
    print(f"wrote {out} ({len(runs)} runs, {len(page) // 1024} KiB)", file=sys.stderr)
    return 0


def cmd_allure_config(args: argparse.Namespace) -> int:
    from hil.report.allure_env import write_allure3_config
    path = write_allure3_config(Path(args.output), name=args.name,
                                single_file=not args.multi_file)
    print(f"wrote {path}", file=sys.stderr)
    return 0
