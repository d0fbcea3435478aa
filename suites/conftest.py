"""Options of the KPU suites (the fixtures and markers come from the hil pytest plugin).

``--switch-cycles N``: load/deinit switch cycles in test_switching.py (default $HIL_SWITCH_CYCLES
or 20). pytest reads options only from conftest files it loads at start-up: this one is loaded when
the command line names suites/ or a file in it, or when no path is given (testpaths = suites).
When it is not, $HIL_SWITCH_CYCLES still works.
"""
from __future__ import annotations

import pytest

import kpu_support


def pytest_addoption(parser: pytest.Parser) -> None:
    kpu_support.add_options(parser)
