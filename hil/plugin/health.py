"""pytest plugin: rig health during a ``--rig`` run (entry point ``hil.plugin.health``).

Two jobs, both on top of the session hil.plugin opens (the plugin named ``hil-session``):

1. Out of service. Each test that uses the board ends healthy (its set-up, i.e. the board's
   ready check, passed and the test raised no infrastructure error) or broken (an infrastructure
   error, or any error while setting it up). After ``--hil-max-broken`` (default 3) broken tests
   in a row on a rig, the rig is taken out of service: its remaining board tests are skipped with
   "rig X taken out of service after N consecutive infrastructure errors: <last error>", so one
   bad board cannot turn a whole night red. Skipped tests are recorded like any other.

2. Whose fault was a failure? When a board test *fails* (an assertion, a device exception), the
   line and the card are checked at once, while the cause is still there: a few REPL round trips
   of a known text (``LINK_CHECK``), and ``uos.listdir('/sd')`` on rigs with a card. If the text
   comes back damaged or the card is unreadable, the rig was at fault, not the firmware: the
   test is reported broken (a pytest error, "broken" in the run record) with a one-line reason.
   A board that does not answer the check at all is left to the next test's recovery: silence
   alone does not say who was at fault.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from hil.device.micropython.code.device import SD_READABLE, link_check
from hil.errors import HilError, InfrastructureError, ReplError, ReplProtocolError
from hil.plugin.fixtures import uses_board
from hil.plugin.keys import BROKEN_KEY, HEALTH_PLUGIN, SESSION_PLUGIN
from hil.report.record import one_line

DEFAULT_MAX_BROKEN = 3
LINK_CHECK = "hil link check: 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LINK_ROUNDS = 3
CHECK_TIMEOUT_S = 2.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil")
    group.addoption("--hil-max-broken", type=int, default=DEFAULT_MAX_BROKEN, metavar="N",
                    help="take a rig out of service after N consecutive infrastructure errors "
                         f"(default {DEFAULT_MAX_BROKEN}; 0 = never)")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    session = config.pluginmanager.get_plugin(SESSION_PLUGIN)
    if session is None or config.pluginmanager.has_plugin(HEALTH_PLUGIN):
        return
    limit = config.getoption("hil_max_broken", DEFAULT_MAX_BROKEN)
    if limit < 0:
        raise pytest.UsageError(f"--hil-max-broken must be >= 0, got {limit}")
    config.pluginmanager.register(RigHealth(session, limit), HEALTH_PLUGIN)


@dataclass
class RigState:
    consecutive: int = 0
    last_error: str = ""
    out_reason: str = ""          # set once the rig is out of service


def check_failure(board: Any, has_sd: bool) -> str:
    """Why a failed test was the rig's fault ("" when nothing says so)."""
    if board is None or getattr(board, "repl", None) is None:
        return ""
    repl = board.repl
    try:
        repl.ensure_raw()
    except HilError:
        return ""                 # not answering at all: the next test's ready check decides
    bad: list[str] = []
    for _ in range(LINK_ROUNDS):
        try:
            out = repl.exec(link_check(LINK_CHECK), CHECK_TIMEOUT_S)
        except (ReplError, ReplProtocolError) as exc:
            bad.append(one_line(str(exc), 120))
            continue
        except HilError:
            return ""
        if out != LINK_CHECK.encode() + b"\r\n":
            bad.append(f"got {out[:60]!r}")
    if bad:
        return (f"the serial line corrupts or loses bytes: {len(bad)} of {LINK_ROUNDS} link-check "
                f"round trips came back damaged ({bad[0]})")
    if has_sd:
        try:
            repl.exec(SD_READABLE, CHECK_TIMEOUT_S)
        except ReplError as exc:
            return f"the SD card is not readable ({exc})"
        except HilError:
            return ""
    return ""


class RigHealth:
    """Per-rig health over one session (one rig today; keyed by rig name for the farm)."""

    def __init__(self, session: Any, limit: int) -> None:
        self.session = session
        self.limit = limit
        self.rigs: dict[str, RigState] = {}
        self._tests: dict[str, tuple[bool, str, bool]] = {}   # nodeid -> (broken, why, call ran)

    def _rig(self) -> RigState:
        return self.rigs.setdefault(self.session.rig.name, RigState())

    def _uses_board(self, item: pytest.Item) -> bool:
        return uses_board(item)

    # -- out of service ----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        state = self._rig()
        if state.out_reason and self._uses_board(item):
            pytest.skip(state.out_reason)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        if not self._uses_board(item) or self._rig().out_reason:
            return
        broken, why, ran = self._tests.get(item.nodeid, (False, "", False))
        if call.when == "setup" and report.failed:
            broken, why = True, _error_line(call)
        elif call.when == "call":
            ran = not report.skipped
            if report.failed and call.excinfo is not None:
                if isinstance(call.excinfo.value, InfrastructureError) or getattr(report, "hil_broken", False):
                    broken, why = True, _error_line(call)
                else:
                    reason = check_failure(self.session.board, self.session.has_sd)
                    if reason:
                        broken, why = True, f"rig {self.session.rig.name}: {reason}"
                        self._mark_broken(item, report, why, _error_line(call))
        elif call.when == "teardown" and report.failed and not broken:
            broken, why = True, "teardown: " + _error_line(call)
        self._tests[item.nodeid] = (broken, why, ran)
        if call.when == "teardown":
            self._tests.pop(item.nodeid, None)
            if broken:
                self._count_broken(why)
            elif ran:
                self._rig().consecutive = 0   # the board did its part: the streak is over

    def _mark_broken(self, item: pytest.Item, report: pytest.TestReport, why: str, original: str) -> None:
        item.stash[BROKEN_KEY] = True
        report.hil_broken = True
        shown = f"InfrastructureError: {why} (the test's own error: {original})"
        report.longrepr = f"{report.longrepr}\n\n{shown}"

    def _count_broken(self, why: str) -> None:
        state = self._rig()
        state.consecutive += 1
        state.last_error = why
        if self.limit and state.consecutive >= self.limit:
            state.out_reason = (f"rig {self.session.rig.name} taken out of service after "
                                f"{state.consecutive} consecutive infrastructure errors: {why}")
            board = self.session.board
            if board is not None:
                try:
                    board.note(state.out_reason)
                except HilError:
                    pass

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for state in self.rigs.values():
            if state.out_reason:
                terminalreporter.write_line(f"hil: {state.out_reason}")


def _error_line(call: pytest.CallInfo) -> str:
    exc = call.excinfo.value if call.excinfo is not None else None
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()
    return one_line(f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__, 300)
