"""Long work inside a test, on pytest's terminal: a line per transfer, a line per memory probe.

Like pytest's live logging: the lines appear while the test runs, between pytest's own progress
characters, capture suspended for the moment of writing. A transfer (a put, a get, an ISP write:
steps marked ``show``) that has run ``SHOW_AFTER_S`` gets a line; on a terminal that line is
redrawn with bytes, rate and time left until the transfer ends, elsewhere (CI, a log) only its
final line is written. A memory probe of the threshold search gets one line when it ends. ``-q``
turns all of it off. Only the process that owns the terminal draws (not xdist workers).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest
from _pytest.pathlib import bestrelpath

from hil.progress import REDRAW_S, final_line, live_line
from hil.steps import Step

SHOW_AFTER_S = 2.0     # a transfer shorter than this gets no line: many small uploads stay quiet
INDENT = "    hil: "


def _label(step: Step) -> str:
    first = next(iter(step.args.values()), "")
    return f"{step.name} {first:#x}" if isinstance(first, int) and not isinstance(first, bool) \
        else f"{step.name} {first}".rstrip()


class TerminalProgress:
    """A watcher of shown steps (hil.steps) drawing on pytest's terminal reporter."""

    def __init__(self, reporter: Any, capture: Any, tty: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reporter = reporter
        self.capture = capture
        self.tty = tty
        self.clock = clock
        self._open = False                 # our last line is on the terminal, not ended yet
        self._resume: Any = None
        self._in_test = False
        self._t0: dict[int, float] = {}
        self._done: dict[int, tuple[int, int]] = {}
        self._drawn: dict[int, float] = {}

    @classmethod
    def for_config(cls, config: pytest.Config) -> "TerminalProgress | None":
        """The watcher for this run, or None when nothing should be drawn (-q, no terminal reporter)."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or config.get_verbosity() < 0:
            return None
        return cls(reporter, config.pluginmanager.get_plugin("capturemanager"), bool(reporter.isatty))

    # -- what a step tells ------------------------------------------------------------------
    def started(self, step: Step) -> None:
        self._t0[id(step)] = self.clock()

    def progressed(self, step: Step, done: int, total: int) -> None:
        key = id(step)
        self._done[key] = (done, total)
        if not self.tty or done >= total:
            return
        now = self.clock()
        took = now - self._t0.get(key, now)
        if took < SHOW_AFTER_S or now - self._drawn.get(key, 0.0) < REDRAW_S:
            return
        first = key not in self._drawn
        self._drawn[key] = now
        self._out(INDENT + live_line(_label(step), done, total, took), live=True, first=first)

    def finished(self, step: Step, outcome: str, seconds: float) -> None:
        key = id(step)
        self._t0.pop(key, None)
        done = self._done.pop(key, None)
        drawn = self._drawn.pop(key, None) is not None
        if done is not None:
            if seconds < SHOW_AFTER_S and not drawn:
                return
            line = final_line(_label(step), done[0], done[1], seconds)
        elif step.summary:
            line = f"{step.name}: {step.summary} ({seconds:.1f} s)"
        else:
            return
        if outcome != "passed" and done is None:
            line += ", failed"
        self._out(INDENT + line, live=False, first=not drawn)

    # -- drawing -----------------------------------------------------------------------------
    def _out(self, text: str, live: bool, first: bool) -> None:
        try:
            if self.capture is not None:
                with self.capture.global_and_fixture_disabled():
                    self._write(text, live, first)
            else:
                self._write(text, live, first)
        except (OSError, ValueError):
            pass   # a closed or broken terminal must not break the test

    def _write(self, text: str, live: bool, first: bool) -> None:
        reporter, tw = self.reporter, self.reporter._tw
        if first:
            if not self._open:
                self._resume = reporter.currentfspath     # the module (or, verbose, the test) line
            if tw.width_of_current_line:
                tw.line()
            reporter.currentfspath = None
        if live or not first:
            reporter.rewrite(text, erase=True)
        else:
            tw.write(text)
        self._open = True
        if not live and not self._in_test:
            tw.line()                                     # outside a test nobody else ends it
            self._open = False
        tw.flush()

    # -- pytest's side -------------------------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._in_test = True

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self._in_test = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Our last line is left open; before pytest writes the test's result, end it and put
        the module's name back, so the result lands where pytest would have put it (verbose
        pytest rewrites the test's name on a line of its own anyway)."""
        if not self._open:
            return
        self._open = False
        resume = self._resume
        if isinstance(resume, Path):
            tw = self.reporter._tw
            tw.line()
            tw.write(bestrelpath(self.reporter.startpath, resume) + " ")
            self.reporter.currentfspath = resume
