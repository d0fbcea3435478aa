"""Options of the KPU suites (the fixtures and markers come from the hil pytest plugin).

``--switch-cycles N``: load/deinit switch cycles in test_switching.py (default $HIL_SWITCH_CYCLES
or 20). pytest reads options only from conftest files it loads at start-up: this one is loaded when
the command line names suites/ or a file in it, or when no path is given (testpaths = suites).
When it is not, $HIL_SWITCH_CYCLES still works.

Fixtures shared by the suites: ``good`` (a model the build loads, on the board) and ``checks``
(what kpu_support.check_case holds the board to a profile's case with).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import kpu_support


def pytest_addoption(parser: pytest.Parser) -> None:
    kpu_support.add_options(parser)


@pytest.fixture
def good(models) -> str:
    """The smallest committed model the build loads, on the board: the "still works" check."""
    return models.good()


@pytest.fixture
def checks(device, kpu, lifecycle, firmware, request, good):
    """What kpu_support.check_case needs to hold the board to a case of the profile."""
    return SimpleNamespace(device=device, kpu=kpu, lifecycle=lifecycle, firmware=firmware, request=request,
                           good=good)
