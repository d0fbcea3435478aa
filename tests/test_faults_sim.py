"""Fault injection in the simulator itself (k210sim/faults.py), through the control socket.

Each fault is armed with ``{"cmd": "fault", ...}`` on a SimServer (pace off) and observed with a
Board attached to it (the framework's own link, console and raw REPL) and the event log.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hil.board import Board
from hil.console import Console
from hil.errors import HilError, LinkError, ReplError, ReplProtocolError
from k210sim.errors import SimError
from hil.link import Link, SerialLog
from hil.rig import load_rig
from k210sim.control import ControlClient
from k210sim.faults import FAULTS

RIGS = Path(__file__).resolve().parent.parent / "rigs"
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")


def fast_rig(name: str = "sim", boot_timeout: float = 3.0):
    rig = load_rig(name, RIGS)
    return replace(rig, serial=replace(rig.serial, boot_timeout=boot_timeout),
                   sim=replace(rig.sim, pace="off"))


@pytest.fixture
def sim(sim_factory):
    return sim_factory()


@pytest.fixture
def ctl(sim):
    return ControlClient(sim.control_path)


@pytest.fixture
def board(sim, tmp_path):
    b = Board(fast_rig(), results=tmp_path, log=SerialLog(tmp_path / "board.log"),
              sim_endpoints=sim.endpoints)
    b.open()
    try:
        b.lifecycle.start()
        yield b
    finally:
        b.close()


def fired(sim, name: str, since: int = 0, timeout: float = 5.0):
    return sim.events.wait_for(lambda e: e["kind"] == "fault" and e["name"] == name
                               and e["action"] == "fired", since=since, timeout=timeout)


def booted(sim, since: int, timeout: float = 5.0):
    return sim.events.wait_for(lambda e: e["kind"] == "boot", since=since, timeout=timeout)


# -- the control socket side --------------------------------------------------------------------
def test_list_names_every_fault_with_its_parameters(ctl):
    table = ctl.fault("list")["faults"]
    assert set(table) == set(FAULTS)
    assert table["corrupt"]["params"]["rate"] == {"type": "number", "default": 0.01,
                                                 "help": "probability per byte"}
    assert table["hang"]["params"]["until"]["choices"] == ["reset", "power", "clear"]


@pytest.mark.parametrize("name,params,message", [
    ("melt", {}, "unknown fault 'melt' (known: armed, brownout_kpu_load, clear, corrupt"),
    ("corrupt", {"rate": 2}, "fault corrupt: 'rate' must be in (0, 1], got 2"),
    ("corrupt", {"rate": "x"}, "fault corrupt: 'rate' must be int or number, got 'x'"),
    ("corrupt", {"speed": 1}, "fault corrupt: unknown parameter(s) speed (known: rate, direction, seed, count)"),
    ("drop", {"direction": "up"}, "fault drop: 'direction' must be one of both, to_board, to_host, got 'up'"),
    ("hang", {"after": True}, "fault hang: 'after' must be int, got True"),
    ("slow_boot", {"delay": 0}, "fault slow_boot: 'delay' must be > 0 seconds"),
])
def test_bad_fault_requests_are_one_line_errors(ctl, name, params, message):
    with pytest.raises(SimError) as info:
        ctl.fault(name, **params)
    text = str(info.value)
    assert "\n" not in text and message in text


def test_armed_and_clear(ctl):
    ctl.fault("corrupt", rate=0.5, direction="to_host")
    ctl.fault("slow_boot", delay=1.0)
    armed = ctl.fault("armed")["armed"]
    assert armed["corrupt"] == {"rate": 0.5, "direction": "to_host", "seed": 0, "count": 0}
    assert sorted(ctl.fault("clear")["cleared"]) == ["corrupt", "slow_boot"]
    assert ctl.fault("armed")["armed"] == {}


# -- hang ----------------------------------------------------------------------------------------
def test_hang_now_until_reset(sim, ctl, board):
    ctl.fault("hang")
    assert ctl.status()["mode"] == "hung"
    assert not board.lifecycle.responsive(timeout=1.0)
    assert board.lifecycle.recover("hung board") == "hard reset"
    assert board.repl.exec("print(7)") == b"7\r\n"


def test_hang_after_n_bytes(sim, ctl, board):
    mark = sim.events.last_seq
    ctl.fault("hang", after=40)
    assert board.repl.exec("print('a' * 3)") == b"aaa\r\n"     # well under 40 bytes
    with pytest.raises(ReplProtocolError):
        board.repl.exec("print('this line takes the count past forty bytes')", timeout=1.0)
    assert fired(sim, "hang", mark) is not None
    assert ctl.status()["mode"] == "hung"


def test_hang_until_power_survives_a_reset(sim, ctl, board):
    ctl.fault("hang", until="power")
    mark = sim.events.last_seq
    ctl.reset()
    assert booted(sim, mark)["mode"] == "hung"
    ctl.power(False)
    ctl.power(True)
    board.lifecycle.wait_boot()
    assert board.repl.exec("print(1)") == b"1\r\n"


# -- resets --------------------------------------------------------------------------------------
def test_reset_at_byte(sim, ctl, board):
    ctl.fault("reset_at_byte", byte=30)
    mark = sim.events.last_seq
    with pytest.raises(HilError):
        board.repl.exec("x = 1\n" * 20, timeout=1.0)
    req = sim.events.wait_for(lambda e: e["kind"] == "reset-request", since=mark)
    assert req["reason"] == "fault: reset at byte"
    assert booted(sim, req["seq"]) is not None
    board.lifecycle.wait_boot()
    assert board.repl.exec("print(2)") == b"2\r\n"          # one-shot: the board works again


def test_brownout_when_the_code_of_a_kpu_load_is_sent(sim, ctl, board):
    ctl.fault("brownout_kpu_load")
    assert board.repl.exec("print('kpu')") == b"kpu\r\n"    # no kpu.load: nothing happens
    mark = sim.events.last_seq
    with pytest.raises(HilError):
        board.device.kpu_load("/sd/none.kmodel", timeout=2.0)
    req = sim.events.wait_for(lambda e: e["kind"] == "reset-request", since=mark)
    assert req["reason"] == "fault: brownout during kpu.load"
    board.lifecycle.wait_boot()
    with pytest.raises(HilError) as info:                   # count=1: the next load reaches the firmware
        board.device.kpu_load("/sd/none.kmodel")
    assert "load error:2005, ERR_READ_FILE" in str(info.value)  # MaixPy v0.6.2's answer to a missing file


# -- the bytes on the line --------------------------------------------------------------------------
@pytest.mark.slow
def test_corrupt_to_host_garbles_replies(sim, ctl, board):
    ctl.fault("corrupt", rate=1.0, direction="to_host")
    with pytest.raises(ReplProtocolError):                   # no "OK" ever comes back
        board.repl.exec("print('abcdefghij')", timeout=1.0)
    assert "\\x" in board.log_path.read_text()               # the garbage is in the serial log
    ctl.fault("clear")
    board.lifecycle.recover("after corruption")
    assert board.repl.exec("print(8)") == b"8\r\n"


def test_corrupt_to_board_reaches_the_firmware_as_bad_code(sim, ctl, board):
    ctl.fault("corrupt", rate=1.0, direction="to_board", count=1)   # one flipped bit
    with pytest.raises(HilError):
        board.repl.exec("print(12345)", timeout=1.0)
    board.lifecycle.recover("after corruption")
    assert board.repl.exec("print(3)") == b"3\r\n"


def test_drop_loses_bytes(sim, ctl, board):
    ctl.fault("drop", rate=1.0, direction="to_board", count=1)     # the 'p' of print
    with pytest.raises(ReplError) as info:
        board.repl.exec("print('0123456789')", timeout=1.0)
    assert str(info.value) == "NameError: name 'rint' isn't defined"
    ctl.fault("drop", rate=1.0, direction="to_host")
    with pytest.raises(ReplProtocolError):
        board.repl.exec("print(1)", timeout=1.0)
    ctl.fault("clear")
    board.lifecycle.recover("after drops")
    assert board.repl.exec("print(4)") == b"4\r\n"


def test_garbage_at_boot_is_on_the_line_before_the_boot_log(sim, ctl, board):
    ctl.fault("garbage_at_boot", size=200, seed=1)
    mark = sim.events.last_seq
    board.lifecycle.power_cycle()                                       # the banner is still found
    assert fired(sim, "garbage_at_boot", mark)["bytes"] == 200
    assert board.repl.exec("print(5)") == b"5\r\n"


# -- the port going away ----------------------------------------------------------------------------
def test_pty_vanishes_and_comes_back(sim, ctl, tmp_path):
    link_path = Path(sim.endpoints["pty"])
    link = Link(str(link_path), 115200, SerialLog(tmp_path / "l.log"))
    try:
        ctl.fault("disconnect", duration=0.5, port="pty")
        with pytest.raises(LinkError) as info:
            deadline = time.monotonic() + 3      # the boot log may still be buffered: read past it
            while time.monotonic() < deadline:
                link.read(4096, 0.05)
        assert "link lost" in str(info.value)
        assert not link_path.exists()
        link.reopen(5.0)                                      # the by-id link is back
        assert link_path.exists()
        link.write(b"\r\x03")
        assert Console(link).read_exact(3, 2.0)                        # the board answers on the new pty
    finally:
        link.close()


def test_rfc2217_connection_closed(sim, ctl, tmp_path):
    url = sim.endpoints["rfc2217"]
    link = Link(url, 115200, SerialLog(tmp_path / "r.log"))
    try:
        mark = sim.events.last_seq
        ctl.fault("disconnect", duration=0.5, port="rfc2217")
        with pytest.raises(LinkError):
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                link.read(4096, 0.05)
        ev = sim.events.wait_for(lambda e: e["kind"] == "client" and e.get("action") == "disconnect",
                                 since=mark)
        assert ev is not None
        time.sleep(0.6)
        link.reopen(5.0)
        link.write(b"\r\x03")
        assert Console(link).read_exact(3, 2.0)
    finally:
        link.close()


def test_board_ladder_reopens_a_vanished_pty(sim, ctl, board):
    ctl.fault("disconnect", duration=0.5)
    with pytest.raises(LinkError):
        board.repl.exec("print(1)", timeout=1.0)
    assert board.lifecycle.recover("link lost") == "reopen link"
    assert board.repl.exec("print(6)") == b"6\r\n"


# -- storage ---------------------------------------------------------------------------------------
def test_sd_removed_and_back(sim, ctl, board):
    assert board.device.sd_present()
    ctl.fault("sd_removed")
    with pytest.raises(ReplError) as info:
        board.repl.exec("import uos\nuos.listdir('/sd')")
    assert str(info.value) == "OSError: [Errno 5] EIO"
    ctl.fault("clear")
    assert board.device.sd_present()


def test_sd_removed_for_a_while(sim, ctl, board):
    ctl.fault("sd_removed", duration=0.3)
    assert not ctl.status()["sd"]
    deadline = time.monotonic() + 5
    while not ctl.status()["sd"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "sd_removed" not in ctl.fault("armed")["armed"]


def test_flash_write_error(sim, ctl):
    ctl.fault("flash_write_error", after=1, count=1)
    flash = sim.storage.flash
    flash.write(0x400000, b"ok")
    with pytest.raises(SimError, match="injected flash write error at 0x00401000"):
        flash.write(0x401000, b"bad")
    flash.write(0x402000, b"ok again")
    assert flash.read(0x401000, 3) == b"\xff" * 3             # nothing half-written


# -- boot --------------------------------------------------------------------------------------------
def test_slow_boot_is_silent_for_the_delay(sim, ctl, board):
    ctl.fault("slow_boot", delay=1.5)
    t0 = time.monotonic()
    board.lifecycle.power_cycle()
    assert time.monotonic() - t0 >= 1.5
    assert fired(sim, "slow_boot")["delay"] == 1.5


def test_main_loop_is_interrupted_and_cleared(sim, ctl, board):
    reply = ctl.fault("main_loop")
    path = Path(reply["path"])
    assert path == sim.storage.sd_root / "main.py"
    board.lifecycle.power_cycle()                                       # wait_boot sends Ctrl-C
    assert "interrupting boot.py/main.py" in (board.log_path.read_text())
    ctl.fault("clear")
    from k210sim.maixpy.firmware import DEFAULT_MAIN_PY      # the main.py _boot.py had written
    assert path.read_bytes() == DEFAULT_MAIN_PY


def test_main_loop_restores_a_users_main_py(sim, ctl):
    path = sim.storage.sd_root / "main.py"
    path.write_text("print('mine')\n")
    ctl.fault("main_loop")
    assert "while True" in path.read_text()
    ctl.fault("clear")
    assert path.read_text() == "print('mine')\n"


def test_isp_silent(sim, ctl):
    from hil.isp.flasher import IspFlasher
    from hil.isp.loader import Retries
    from hil.errors import IspError
    ctl.fault("isp_silent")
    from hil.boards import get_board
    with IspFlasher(sim.endpoints["pty"], get_board("maix-bit"), enter_isp=lambda: ctl.reset(boot=True),
                    retries=Retries(greet_rounds=2)) as f:
        with pytest.raises(IspError) as info:
            f.connect()
    assert "ROM greeting" in str(info.value) and "no answer after 2 rounds" in str(info.value)


def test_control_socket_is_private(sim):
    for name in ("control.sock", "modem.sock"):
        mode = os.stat(os.path.realpath(sim.state_dir / name)).st_mode & 0o777
        assert mode == 0o600, (name, oct(mode))
