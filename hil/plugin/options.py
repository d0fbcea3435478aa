"""Command-line options and markers of the plugin, and turning them into a session.

Without --rig the plugin is inert. With --rig (or --rig-pool) the farm controller takes the rigs
first (locks with expiry, labgrid places; hil.farm.controller), then one HilSession per process
opens its board (an xdist worker gets the rig its controller took for it).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hil.errors import ConfigError
from hil.plugin.keys import CONTROLLER_KEY, SESSION_KEY, SESSION_PLUGIN
from hil.plugin.markers import PYSERIAL_NOISE, add_markers


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number of seconds >= 0")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "K210 hardware-in-the-loop")
    group.addoption("--rig", action="append", default=[], metavar="NAME",
                    help="run the HIL suites on this rig (rigs/NAME.toml, or a path to a rig file); "
                         "repeatable: with -n N each xdist worker gets its own rig, without -n the "
                         "first free one is used")
    group.addoption("--rig-pool", default=None, metavar="NAME",
                    help="spread the suites over the free rigs of a pool (rigs/pools/NAME.toml, or a "
                         "path): with -n N up to N of them, one per worker")
    group.addoption("--rig-wait", default=0.0, type=_seconds, metavar="SECONDS",
                    help="wait up to this long for a busy rig (default 0: fail at once naming its holder)")
    group.addoption("--rig-lock-dir", default=None, metavar="DIR",
                    help="rig locks (default $HIL_LOCK_DIR, else $XDG_RUNTIME_DIR/k210-hil/locks, else "
                         "~/.cache/k210-hil/locks); everyone sharing rigs must share this directory")
    group.addoption("--rig-lock-ttl", default=60.0, type=_seconds, metavar="SECONDS",
                    help="a rig lock expires this long after its last renewal (renewed every third of "
                         "it while the run lives; default 60)")
    group.addoption("--rig-dir", default=None, metavar="DIR",
                    help="the project's rig directory (default: the hil_rig_dir ini option, then ./rigs); "
                         "$HIL_RIG_DIR and the shipped rigs are searched after it")
    group.addoption("--hil-results", default="results", metavar="DIR",
                    help="where run records, serial logs and simulator state go (default ./results)")
    # The shipped suites' one knob. It lives here, not in a conftest beside them, because pytest
    # reads options only from conftests it loads at start-up, which misses `--pyargs hil.suites`.
    parser.addini("hil_rig_dir", default="",
                  help="the project's rig directory, relative to the ini file (searched before ./rigs, "
                       "$HIL_RIG_DIR and the shipped rigs)")
    group.addoption("--switch-cycles", type=int, default=None, metavar="N",
                    help="load/deinit switch cycles in test_switching (default $HIL_SWITCH_CYCLES or "
                         "20); raise it for nightly runs")


def _keep_to_suites(config: pytest.Config) -> None:
    """Never run the framework's own tests on a rig by accident; run the shipped suites anywhere.

    With no test path and no ini file (an empty directory, or pytest missed the checkout's
    pyproject.toml because it took the value of ``--hil-results /elsewhere`` for a test path:
    it picks its ini file before plugins add their options), pytest would collect everything
    below the current directory. Run ./suites instead when there is one, else the suites
    shipped with k210-hil (hil.suites).
    """
    if config.inipath is not None or config.args_source != pytest.Config.ArgsSource.INVOCATION_DIR:
        return
    from hil.resources import shipped
    suites = Path(config.invocation_params.dir) / "suites"
    config.args[:] = [str(suites if suites.is_dir() else shipped("suites"))]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from hil.plugin.session import HilSession
    add_markers(config)
    if hasattr(config, "workerinput"):
        info = config.workerinput.get("hil")
        if info:
            config.addinivalue_line("filterwarnings", PYSERIAL_NOISE)
            _configure_worker(config, info)
        return
    rigs = config.getoption("rig", default=[])
    pool = config.getoption("rig_pool", default=None)
    if not rigs and not pool:
        return   # inert
    if getattr(config.option, "help", False) or getattr(config.option, "version", False):
        return
    if rigs and pool:
        raise pytest.UsageError("--rig and --rig-pool: give one or the other")
    _keep_to_suites(config)
    config.addinivalue_line("filterwarnings", PYSERIAL_NOISE)
    if config.getoption("rig_lock_ttl") <= 0:
        raise pytest.UsageError("--rig-lock-ttl: must be > 0 seconds")
    from hil.farm.controller import FarmController   # imported here so an inert plugin costs nothing
    controller = FarmController(config, rigs, pool)
    config.stash[CONTROLLER_KEY] = controller
    controller.start()
    if controller.distributed:
        return   # the workers open the boards (_configure_worker)
    session = HilSession(config, controller.claims[0].rig, controller.results, controller.run_id,
                         notes=controller.notes)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, SESSION_PLUGIN)


def _configure_worker(config: pytest.Config, info: dict) -> None:
    """An xdist worker: the rig its controller took for it (sent in workerinput)."""
    from hil.plugin.session import HilSession
    from hil.rig import load_rig
    try:
        rig = load_rig(Path(info["rig_path"]))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if info.get("port") and info["port"] != rig.serial.port:
        rig = replace(rig, serial=replace(rig.serial, port=info["port"]))
    worker = str(config.workerinput.get("workerid", "gw?"))
    session = HilSession(config, rig, Path(info["results"]), info["run_id"], worker=worker,
                         argv=list(config.workerinput.get("mainargv") or sys.argv))
    config.stash[SESSION_KEY] = session
    if info.get("allure_dir") and getattr(config.option, "allure_report_dir", "missing") is None:
        config.option.allure_report_dir = info["allure_dir"]
    config.pluginmanager.register(session, SESSION_PLUGIN)
