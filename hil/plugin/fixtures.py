"""The fixtures suites use: the rig and its profile, the board, the device API and its domain
drivers, and ``measure``. Without --rig, a test that uses them (or lives under suites/) is skipped.

Board objects live for the session (one board per process); the fixtures are per test, so each
test is prepared (the autouse ``_hil_prepare_board``) and sees the board's current drivers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from hil.plugin.keys import MEASURE_KEY, SKIP_NO_RIG, session_of
from hil.report.record import MeasurementRecord
from hil.units import plain

HIL_FIXTURES = ("rig", "firmware", "board", "lifecycle", "repl", "device", "kpu", "files", "models",
                "flash_models", "memory_edges", "measure")
BOARD_FIXTURES = ("board", "lifecycle", "repl", "device", "kpu", "files", "models", "flash_models",
                  "memory_edges")


def _is_ours(item: pytest.Item, name: str) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get(name) if info is not None else None
    if not defs:
        return False
    return getattr(defs[-1].func, "__module__", "") == __name__


def is_hil_item(item: pytest.Item) -> bool:
    """A HIL test: lives under suites/ or uses one of this plugin's fixtures."""
    if "suites" in Path(str(getattr(item, "path", ""))).parts:
        return True
    return any(name in getattr(item, "fixturenames", ()) and _is_ours(item, name) for name in HIL_FIXTURES)


def uses_board(item: pytest.Item) -> bool:
    return any(name in getattr(item, "fixturenames", ()) and _is_ours(item, name) for name in BOARD_FIXTURES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = session_of(config)
    for item in items:
        if session is None:
            if is_hil_item(item):
                item.add_marker(pytest.mark.skip(reason=SKIP_NO_RIG))
            continue
        reason = session.rig_lacks(item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def _need_session(request: pytest.FixtureRequest) -> Any:
    session = session_of(request.config)
    if session is None:
        pytest.skip(SKIP_NO_RIG)
    return session


@pytest.fixture(scope="session")
def rig(request: pytest.FixtureRequest):
    """The rig spec (hil.rig.RigSpec) of this session."""
    return _need_session(request).rig


@pytest.fixture(scope="session")
def firmware(request: pytest.FixtureRequest):
    """The firmware profile (hil.firmware.FirmwareProfile) the rig is expected to run."""
    return _need_session(request).rig.profile


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest):
    """The opened board (hil.board.Board), kept up between tests."""
    return _need_session(request).ready_board()


@pytest.fixture(autouse=True)
def _hil_prepare_board(request: pytest.FixtureRequest):
    """Before each test that uses the board: a fresh boot (power_cycle marker), a soft reset
    after a failed test, or a quick check that the REPL answers."""
    session = session_of(request.config)
    if session is not None and uses_board(request.node):
        session.prepare(request.node)
    yield


@pytest.fixture
def lifecycle(board):
    """The board's lifecycle (hil.board.lifecycle.Lifecycle): soft_reset(), power_cycle(), recover()."""
    return board.lifecycle


@pytest.fixture
def repl(board):
    """The board's raw REPL (hil.device.micropython.repl.Repl): exec(code), eval(expr)."""
    if board.repl is None:
        pytest.skip(f"rig {board.rig.name}: the {board.profile.family} firmware has no MicroPython REPL")
    return board.repl


@pytest.fixture
def device(board):
    """The device API (hil.device.api.Device): memory, put/get, files, kpu_load."""
    return board.device


def _driver(name: str, attr: str, doc: str):
    """A per-test fixture handing out one of the board's domain drivers (hil.device.drivers)."""
    def fixture(board):
        return getattr(board.drivers, attr)
    fixture.__doc__ = doc
    fixture.__name__ = name
    return pytest.fixture(name=name)(fixture)


kpu = _driver("kpu", "kpu", "The KPU driver (hil.device.api.KpuDriver): load(path or offset), deinit, forward.")
files = _driver("files", "files", "The file cache on the board (hil.device.files.FileCache): ensure(path, sha256, ...).")
models = _driver("models", "models", "Manifest models on the board (hil.device.models.ModelStore): put, good, path.")
flash_models = _driver("flash_models", "flash", "Models at flash offsets (hil.device.flash.FlashModels): write, head, sha256.")
memory_edges = _driver("memory_edges", "edges", "Memory edges measured this session (hil.device.memory.MemoryEdges).")


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Callable[..., float]:
    """``measure(name, value, unit="", low=None, high=None)``: record a measurement in the run
    record; a value outside [low, high] fails the test naming the measurement, value and band."""
    records = request.node.stash.setdefault(MEASURE_KEY, [])

    def _measure(name: str, value: float, unit: str = "", low: float | None = None,
                 high: float | None = None) -> float:
        record = MeasurementRecord.check(name, value, unit, low, high)
        records.append(record)
        if record.ok is False:
            band = f"[{'-inf' if low is None else plain(low)}, {'+inf' if high is None else plain(high)}]"
            shown = f"{plain(value)} {unit}".strip()
            pytest.fail(f"measurement {name} = {shown} is outside its band {band}", pytrace=False)
        return value
    return _measure
