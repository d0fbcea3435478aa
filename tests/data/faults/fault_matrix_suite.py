"""A purpose-made HIL suite for the fault matrix (tests/test_faults_e2e.py runs it with --rig).

Each ``test_<fault>`` arms one fault through the simulator's control socket and then does what
a suite would do; the ``test_after_<fault>`` right behind it checks that the recovery ladder
brought the board back. The ``fault`` fixture clears every fault when the test ends. Nothing
here is a real suite: suites/ never talk to the simulator.
"""
from __future__ import annotations

import hashlib

import pytest

from k210sim.control import ControlClient

DATA = hashlib.shake_256(b"fault matrix upload").digest(6000)


@pytest.fixture
def fault(board):
    ctl = ControlClient(board.sim.endpoints["control"])
    yield lambda name, **kw: ctl.fault(name, **kw)
    ctl.fault("clear")


def alive(repl):
    assert repl.eval("6 * 7") == 42


def test_hang(repl, fault):
    fault("hang")
    repl.exec("print('are you there')", timeout=2.0)


def test_after_hang(repl):
    alive(repl)


def test_hang_after_bytes(repl, fault):
    fault("hang", after=300)
    for i in range(20):
        repl.exec(f"x{i} = '{'y' * 40}'", timeout=2.0)


def test_after_hang_after_bytes(repl):
    alive(repl)


def test_upload_cut_once(device, fault):
    fault("reset_at_byte", byte=3000)
    assert device.put(DATA, "/sd/once.bin") == hashlib.sha256(DATA).hexdigest()
    assert device.size("/sd/once.bin") == len(DATA)


def test_upload_cut_every_time(device, fault):
    fault("reset_at_byte", byte=3000, repeat=True)
    device.put(DATA, "/sd/cut.bin")


def test_after_upload_cut(device):
    assert not device.exists("/sd/cut.bin")


def test_corrupt_code(repl, fault):
    fault("corrupt", rate=0.2, direction="to_board", seed=1)
    assert repl.eval("sum(range(10))") == 45


def test_after_corrupt_code(repl):
    alive(repl)


def test_corrupt_upload(device, fault):
    device.transfer.probe()
    fault("corrupt", rate=0.003, direction="to_board", seed=2)
    device.put(DATA, "/sd/corrupt.bin")


def test_after_corrupt_upload(device):
    assert not device.exists("/sd/corrupt.bin")


def test_drop(repl, fault):
    fault("drop", rate=0.2, direction="to_board", seed=3)
    assert repl.eval("sum(range(10))") == 45


def test_after_drop(repl):
    alive(repl)


def test_port_vanishes(repl, fault):
    fault("disconnect", duration=1.0)
    repl.exec("print('still there?')", timeout=2.0)


def test_after_port_vanishes(repl):
    alive(repl)


def test_brownout_during_kpu_load(device, fault):
    fault("brownout_kpu_load")
    device.kpu_load("/sd/any.kmodel", timeout=10.0)


def test_after_brownout(repl):
    alive(repl)


def test_sd_removed(device, fault):
    fault("sd_removed")
    assert "once.bin" in device.listdir("/sd")


def test_after_sd_removed(device):
    assert "once.bin" in device.listdir("/sd")


def test_flash_write_error(board, fault):
    fault("flash_write_error")
    board.lifecycle.flash_data(0x300000, DATA)


def test_after_flash_write_error(repl):
    alive(repl)


def test_isp_never_greets(board, fault):
    fault("isp_silent")
    board.lifecycle.flash_data(0x300000, DATA)


def test_after_isp_never_greets(repl):
    alive(repl)


def test_slow_boot(board, fault):
    fault("slow_boot", delay=board.rig.serial.boot_timeout + 4.0)
    board.lifecycle.power_cycle()


def test_after_slow_boot(repl):
    alive(repl)


def test_main_never_returns(board, repl, fault):
    fault("main_loop")
    board.lifecycle.power_cycle()
    alive(repl)


def test_main_never_returns_ctrl_c_off(board, fault):
    fault("main_loop", interruptible=False)
    board.lifecycle.power_cycle()


def test_after_main_never_returns(repl):
    alive(repl)


def test_garbage_at_boot(board, repl, fault):
    fault("garbage_at_boot", size=512, seed=4)
    board.lifecycle.power_cycle()
    alive(repl)


def test_firmware_failure_stays_a_failure(repl):
    assert repl.eval("6 * 7") == 43
