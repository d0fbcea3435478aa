"""pytest plugin: ``pytest --rig NAME`` runs the HIL suites on a rig (entry point ``hil.plugin``).

Without --rig the plugin is inert: HIL tests (those under a ``suites`` directory or using the
plugin's fixtures) are skipped with a reason, and everything else runs untouched.

In parts: ``options`` (command line, markers, taking the rigs), ``fixtures`` (rig, firmware,
board, lifecycle, repl, device, kpu, files, models, flash_models, memory_edges, measure),
``outcomes`` (infrastructure errors are errors, not failures), ``session`` (the board for the
session, prepared per test, serial log per test), ``record`` (the run record and allure
extras), ``health`` (its own entry point ``hil.plugin.health``: rigs out of service, whose fault
a failure was). The farm (several rigs, locks, xdist): hil.farm.controller.
"""
from hil.plugin.fixtures import (_hil_prepare_board, board, device, files, firmware, flash_models, kpu, lifecycle,
                                 measure, memory_edges, models, pytest_collection_modifyitems, repl, rig)
from hil.plugin.options import pytest_addoption, pytest_configure
from hil.plugin.outcomes import pytest_report_teststatus, pytest_runtest_makereport

__all__ = ["_hil_prepare_board", "board", "device", "files", "firmware", "flash_models", "kpu", "lifecycle",
           "measure", "memory_edges", "models", "pytest_addoption", "pytest_collection_modifyitems",
           "pytest_configure", "pytest_report_teststatus", "pytest_runtest_makereport", "repl", "rig"]
