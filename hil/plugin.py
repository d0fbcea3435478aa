"""pytest plugin for k210-hil (being built; inert without --rig)."""
from __future__ import annotations


def pytest_addoption(parser):
    group = parser.getgroup("hil", "K210 hardware-in-the-loop")
    group.addoption("--rig", action="append", default=[], metavar="NAME",
                    help="run the HIL suites on this rig (rigs/NAME.toml)")
    group.addoption("--rig-dir", default=None, metavar="DIR", help="where rig files live (default ./rigs)")
    group.addoption("--hil-results", default="results", metavar="DIR",
                    help="where run records and serial logs go (default ./results)")
