"""Outcomes: an infrastructure error is a pytest error and "broken" in the run record, never a
failure; and the one-line outcome, message and longrepr of a test from its phase reports."""
from __future__ import annotations

import pytest

from hil.errors import InfrastructureError
from hil.plugin.keys import BROKEN_KEY
from hil.report.record import one_line


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and report.failed and call.excinfo is not None \
            and isinstance(call.excinfo.value, InfrastructureError):
        item.stash[BROKEN_KEY] = True
        report.hil_broken = True   # shown as an error by pytest_report_teststatus below


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    if report.when == "call" and report.failed and getattr(report, "hil_broken", False):
        return "error", "E", "ERROR"
    return None


def _longrepr_text(report: pytest.TestReport) -> str:
    if report.longrepr is None:
        return ""
    if isinstance(report.longrepr, tuple):        # a skip: (path, line, reason)
        return str(report.longrepr[2])
    return str(report.longrepr)


def _message(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        text = crash.message
        return one_line(text[len("Failed: "):] if text.startswith("Failed: ") else text)
    text = _longrepr_text(report).strip().splitlines()
    return one_line(text[-1]) if text else ""


def classify(reports: list[pytest.TestReport], item: pytest.Item | None) -> tuple[str, str, str]:
    """(outcome, one-line message, longrepr) of one test from its phase reports."""
    by_when = {r.when: r for r in reports}
    setup, call, teardown = by_when.get("setup"), by_when.get("call"), by_when.get("teardown")
    if setup is not None and setup.failed:
        return "broken", _message(setup), _longrepr_text(setup)
    if setup is not None and setup.skipped:
        if getattr(setup, "wasxfail", None) is not None:
            return "xfailed", setup.wasxfail or "xfail", _longrepr_text(setup)
        return "skipped", _message(setup), _longrepr_text(setup)
    outcome, message, longrepr = "passed", "", ""
    if call is not None:
        xfail = getattr(call, "wasxfail", None)
        if call.failed:
            broken = getattr(call, "hil_broken", False) or (item is not None and item.stash.get(BROKEN_KEY, False))
            outcome = "broken" if broken else "failed"
            message, longrepr = _message(call), _longrepr_text(call)
        elif call.skipped:
            outcome = "xfailed" if xfail is not None else "skipped"
            message, longrepr = (xfail or _message(call)), _longrepr_text(call)
        elif xfail is not None:
            outcome, message = "xpassed", xfail
    if teardown is not None and teardown.failed and outcome in ("passed", "xpassed", "skipped"):
        return "broken", "teardown: " + _message(teardown), _longrepr_text(teardown)
    return outcome, message, longrepr
