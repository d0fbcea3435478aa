"""Fixtures shared by the suites: ``good`` (a model the build loads, on the board) and ``checks``
(what kpu_support.check_case holds the board to a profile's case with).

The suites' option ``--switch-cycles`` is the hil plugin's (hil.plugin.options): pytest reads
options only from conftests it loads at start-up, which misses ``--pyargs hil.suites``; fixtures
in this file are found wherever the suites are collected from.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture
def good(models) -> str:
    """The smallest committed model the build loads, on the board: the "still works" check."""
    return models.good()


@pytest.fixture
def checks(device, kpu, lifecycle, firmware, request, good):
    """What kpu_support.check_case needs to hold the board to a case of the profile."""
    return SimpleNamespace(device=device, kpu=kpu, lifecycle=lifecycle, firmware=firmware, request=request,
                           good=good)
