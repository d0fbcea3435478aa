"""One owner of the board's state: every holder of board-side knowledge hears the lifecycle's
``rebooted(cause)`` and ``reconnected()`` and drops what the cause says is gone.

The subscribers of a MaixPy board: the REPL (raw mode, raw-paste probe), the transfer (streaming
probe, baud), the KPU driver (loaded handles), the file cache (files verified this session) and
the model store (where models live). A new subscriber must be added to ``SUBSCRIBERS`` below.
"""
from __future__ import annotations

import pytest

from hil.board.state import SOFT_RESET, RebootCause, State
from hil.device.files import FileCache
from hil.device.micropython.kpu import MaixPyKpu
from hil.device.micropython.repl import Repl
from hil.device.micropython.transfer import Transfer
from hil.device.models import ModelStore

pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")
SUBSCRIBERS = {Repl, Transfer, MaixPyKpu, FileCache, ModelStore}


@pytest.fixture
def busy(sim_board):
    """A board whose subscribers all hold something: a loaded model, verified files, probes."""
    d = sim_board.drivers
    good = d.models.good()
    d.kpu.load(good)
    sim_board.device.transfer.probe()
    assert {type(s) for s in sim_board.events.subscribers} == SUBSCRIBERS
    assert d.kpu.loaded and d.files.files and d.files.dirs and d.models._root
    assert sim_board.device.transfer.streaming is not None and sim_board.repl.raw_paste is not None
    assert sim_board.repl.in_raw
    return sim_board


def held(board) -> dict:
    d, t, r = board.drivers, board.device.transfer, board.repl
    return {"repl raw": r.in_raw, "raw-paste probed": r.raw_paste is not None,
            "streaming probed": t.streaming is not None, "kpu handles": bool(d.kpu.loaded),
            "verified files": bool(d.files.files or d.files.dirs), "model root": d.models._root is not None}


def test_a_new_reboot_cause_resets_every_subscriber(busy) -> None:
    """A cause nobody knew of: its defaults say nothing survived, and nobody needs changing."""
    watchdog = RebootCause("watchdog")
    busy.lifecycle.rebooted(watchdog)
    assert busy.lifecycle.state is State.BOOTING
    assert not any(held(busy).values()), held(busy)
    assert f"board rebooted ({watchdog})" in busy.log_path.read_text()
    # and the board is usable again through the same objects: models re-verified, handles anew
    d = busy.drivers
    handle = d.kpu.load(d.models.good())
    assert d.kpu.loaded == (handle,) and busy.repl.in_raw and busy.lifecycle.state is State.RAW


def test_a_soft_reset_keeps_what_survives_it(busy) -> None:
    assert SOFT_RESET.keeps_files and SOFT_RESET.same_firmware
    busy.lifecycle.soft_reset()
    left = held(busy)
    assert not left["kpu handles"], "the interpreter restarted: every model is gone"
    assert left["verified files"] and left["model root"] and left["streaming probed"] and left["raw-paste probed"]
    assert left["repl raw"] and busy.lifecycle.state is State.RAW


def test_a_reconnection_probes_again(busy) -> None:
    busy.lifecycle.reconnect()
    left = held(busy)
    assert not left["raw-paste probed"] and not left["streaming probed"] and not left["repl raw"]
    assert left["verified files"] and left["kpu handles"]     # the board itself did not restart
    assert busy.repl.eval("2 + 3") == 5


def test_a_reboot_seen_by_the_repl_is_announced(busy, sim_server) -> None:
    """The board reboots under a running program: the REPL sees the boot log and tells everyone."""
    from hil.errors import BoardRebooted
    from k210sim.control import ControlClient
    busy.repl.exec_start("import time\ntime.sleep(2)\n")
    ControlClient(sim_server.control_path).reset()
    with pytest.raises(BoardRebooted):
        busy.repl.exec_finish(5.0)
    assert busy.lifecycle.state is State.BOOTING and not busy.drivers.kpu.loaded
    assert not busy.drivers.files.files, "a reboot in the middle of things may have cut a write"
    busy.lifecycle.wait_boot()
    assert busy.repl.eval("7") == 7


def test_the_firmware_is_probed_again_after_a_new_build(busy) -> None:
    busy.lifecycle.rebooted(RebootCause("firmware flashed by hand", keeps_files=True))
    left = held(busy)
    assert not left["raw-paste probed"] and not left["streaming probed"] and left["verified files"]
