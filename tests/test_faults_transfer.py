"""Uploads under faults: an interrupted upload never leaves a file that looks complete, and a
corrupted one is retried a bounded number of times, then reported (hil/device/micropython/transfer.py).

A Board on an in-process SimServer (pace off); faults armed through the control socket.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hil.board import Board
from hil.errors import InfrastructureError, LinkError, TransferError
from hil.link import SerialLog
from hil.rig import load_rig
from k210sim.control import ControlClient

RIGS = Path(__file__).resolve().parent.parent / "rigs"
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")

DATA = hashlib.shake_256(b"upload under faults").digest(12_000)
WANT = hashlib.sha256(DATA).hexdigest()
REMOTE = "/sd/up.bin"


@pytest.fixture
def rig():
    r = load_rig("sim", RIGS)
    return replace(r, serial=replace(r.serial, boot_timeout=3.0), sim=replace(r.sim, pace="off"))


@pytest.fixture
def sim(sim_factory):
    return sim_factory()


@pytest.fixture
def ctl(sim):
    return ControlClient(sim.control_path)


@pytest.fixture
def board(sim, rig, tmp_path):
    b = Board(rig, results=tmp_path, log=SerialLog(tmp_path / "board.log"), sim_endpoints=sim.endpoints)
    b.open()
    try:
        b.lifecycle.start()
        yield b
    finally:
        b.close()


def sd_files(sim) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sim.storage.sd_root.iterdir() if p.is_file()}


def log(board) -> str:
    return board.log_path.read_text()


def test_reset_mid_upload_is_retried_and_the_file_is_complete(sim, ctl, board):
    ctl.fault("reset_at_byte", byte=5000)          # inside the data, past the receiver code
    assert board.device.put(DATA, REMOTE) == WANT
    files = sd_files(sim)
    assert files["up.bin"] == DATA and "up.bin.part" not in files
    assert "try 1 failed" in log(board) and "the board rebooted" in log(board)


def test_reset_on_every_try_reports_and_leaves_no_complete_looking_file(sim, ctl, board):
    ctl.fault("reset_at_byte", byte=5000, repeat=True)
    t0 = time.monotonic()
    with pytest.raises(TransferError) as info:
        board.device.put(DATA, REMOTE)
    assert time.monotonic() - t0 < 60
    text = str(info.value)
    assert "\n" not in text and "no verified copy after 3 tries" in text and "serial log:" in text
    files = sd_files(sim)
    assert "up.bin" not in files                    # only a .part (at most), never the final name
    assert all(len(v) < len(DATA) for k, v in files.items() if k.startswith("up.bin"))
    ctl.fault("clear")
    board.lifecycle.recover("after the failed upload")
    assert not board.device.exists(REMOTE)


def test_failed_upload_keeps_the_previous_version(sim, ctl, board):
    (sim.storage.sd_root / "up.bin").write_bytes(b"old version")
    ctl.fault("reset_at_byte", byte=5000, repeat=True)
    with pytest.raises(TransferError):
        board.device.put(DATA, REMOTE)
    assert (sim.storage.sd_root / "up.bin").read_bytes() == b"old version"


def test_one_corrupted_byte_is_caught_by_sha256_and_retried(sim, ctl, board):
    ctl.fault("corrupt", rate=0.02, direction="to_board", count=1, seed=3)
    assert board.device.put(DATA, REMOTE) == WANT
    assert sd_files(sim)["up.bin"] == DATA
    text = log(board)
    assert "try 1 failed" in text or "sha256 mismatch on try 1" in text


def test_a_corrupting_line_gives_up_after_the_retries(sim, ctl, board):
    board.device.transfer.probe()                  # the upload itself meets the corruption
    ctl.fault("corrupt", rate=0.002, direction="to_board", seed=5)
    t0 = time.monotonic()
    with pytest.raises(TransferError) as info:
        board.device.put(DATA, REMOTE)
    assert time.monotonic() - t0 < 60
    assert "no verified copy after 3 tries" in str(info.value)
    assert "up.bin" not in sd_files(sim)


def test_dropped_bytes_stall_the_receiver_and_are_retried(sim, ctl, board):
    ctl.fault("drop", rate=1.0, direction="to_board", count=3)
    assert board.device.put(DATA, REMOTE) == WANT
    assert sd_files(sim)["up.bin"] == DATA


@pytest.mark.slow
def test_board_hanging_mid_upload_is_an_infrastructure_error(sim, ctl, board):
    ctl.fault("hang", after=4000)
    t0 = time.monotonic()
    with pytest.raises(InfrastructureError) as info:
        board.device.put(DATA, REMOTE)
    assert time.monotonic() - t0 < 15
    assert "\n" not in str(info.value) and "the board stopped answering" in str(info.value)
    assert "up.bin" not in sd_files(sim)
    assert board.lifecycle.recover("after the hang") == "hard reset"
    assert board.device.put(DATA, REMOTE) == WANT


def test_get_under_corruption_is_verified(sim, ctl, board):
    (sim.storage.sd_root / "down.bin").write_bytes(DATA)
    ctl.fault("corrupt", rate=0.01, direction="to_host", count=1, seed=2)
    assert board.device.get("/sd/down.bin") == DATA


def test_port_vanishing_mid_upload(sim, ctl, board):
    ctl.fault("disconnect", duration=0.5)
    with pytest.raises(LinkError):
        board.device.put(DATA, REMOTE)
    assert board.lifecycle.recover("port vanished") == "reopen link"
    assert board.device.put(DATA, REMOTE) == WANT
