"""Shared fixtures for the framework's own tests.

``sim_server``: a simulated Maix Bit (k210sim.server.SimServer) in a fresh state dir under
tmp_path, line pacing off, RFC 2217 front end on 127.0.0.1 (any free port), stopped at the end.
``sim_factory``: start more, or with other options:
``sim_factory(board="maix-go", build="maixpy-v0.6.2-minimum", pace=True, tcp=("127.0.0.1", 0))``.
``sim_board``: a started hil.board.Board (REPL answering, fresh soft boot) on ``sim_server``
through the shipped ``sim`` rig with pacing off; ``sim_board.device`` is the device API.
All skip the test when the simulator is not importable.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

import pytest


def _sim_server_module():
    try:
        return importlib.import_module("k210sim.server")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("k210sim"):
            pytest.skip(f"simulator not available ({exc.name} missing)")
        raise


@pytest.fixture
def sim_factory(tmp_path: Path) -> Callable[..., Any]:
    module = _sim_server_module()
    started: list[Any] = []

    def start(state_dir: Path | str | None = None, *, board: str = "maix-bit",
              build: str | None = None, pace: bool = False,
              rfc2217: tuple[str, int] | None = ("127.0.0.1", 0),
              tcp: tuple[str, int] | None = None, **kw: Any) -> Any:
        state = Path(state_dir) if state_dir is not None else tmp_path / f"sim-{len(started)}"
        sim = module.SimServer(state, board=board, build=build, rfc2217=rfc2217, tcp=tcp,
                               pace=pace, **kw)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def sim_server(sim_factory: Callable[..., Any]) -> Any:
    return sim_factory()


@pytest.fixture
def sim_board(sim_server: Any, tmp_path: Path) -> Any:
    from dataclasses import replace

    from hil.board import Board
    from hil.link import SerialLog
    from hil.rig import load_rig

    rig = load_rig("sim", Path(__file__).resolve().parent.parent / "rigs")
    rig = replace(rig, sim=replace(rig.sim, pace="off"))
    board = Board(rig, results=tmp_path, log=SerialLog(tmp_path / "sim_board.log"),
                  sim_endpoints=sim_server.endpoints)
    board.open()
    try:
        board.lifecycle.start()
        yield board
    finally:
        board.close()
