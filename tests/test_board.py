"""Board against the simulator: boot, soft reset, power cycle, the recovery ladder, the device API.

Each test attaches a Board to an in-process SimServer (pace off) through the sim rig's
endpoints, except the SimProcess tests, which start ``python -m k210sim serve`` themselves.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from hil.board import Board
from hil.board.simprocess import SimProcess
from hil.errors import BootTimeout, KpuLoadError, MemoryOverflow, ReplError, SimError
from hil.link import SerialLog
from hil.rig import load_rig

RIGS = Path(__file__).resolve().parent.parent / "rigs"
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")


def fast_rig(name: str = "sim", boot_timeout: float = 5.0):
    rig = load_rig(name, RIGS)
    return replace(rig, serial=replace(rig.serial, boot_timeout=boot_timeout),
                   sim=replace(rig.sim, pace="off"))


@pytest.fixture
def attach(tmp_path: Path):
    boards: list[Board] = []

    def make(sim, rig=None) -> Board:
        board = Board(rig or fast_rig(), results=tmp_path, log=SerialLog(tmp_path / "board.log"),
                      sim_endpoints=sim.endpoints)
        boards.append(board.open())
        return board
    yield make
    for board in boards:
        board.close()


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "board.log").read_text()


def test_start_soft_reset_and_banner(sim_server, attach, tmp_path: Path) -> None:
    board = attach(sim_server)
    board.lifecycle.start()
    profile = board.profile
    assert board.firmware_version == profile.version
    assert board.banner == profile.banner
    assert board.repl.exec("print('hello')") == b"hello\r\n"
    assert "soft reset (Ctrl-D)" in log_text(tmp_path)


def test_power_cycle_waits_for_a_fresh_boot(sim_server, attach, tmp_path: Path) -> None:
    board = attach(sim_server)
    board.lifecycle.start()
    board.repl.exec("x = 41")
    boots = board.power.status()["boots"]
    board.lifecycle.power_cycle()
    assert board.power.status()["boots"] == boots + 1
    with pytest.raises(ReplError, match="NameError"):
        board.repl.exec("print(x)")     # a fresh interpreter
    assert "power cycle (sim)" in log_text(tmp_path)


def test_main_py_that_loops_forever_is_interrupted(sim_server, attach, tmp_path: Path) -> None:
    board = attach(sim_server)
    board.lifecycle.start()
    # with a card in, MaixPy runs /sd/main.py (instead of /flash/main.py)
    board.device.put(b"print('main starts')\nwhile True:\n    pass\n", "/sd/main.py")
    board.lifecycle.power_cycle()                 # boots, main.py never returns, Ctrl-C gets the REPL
    assert board.repl.exec("print(1)") == b"1\r\n"
    text = log_text(tmp_path)
    assert "main starts" in text and "interrupting boot.py/main.py with Ctrl-C" in text
    # the ladder's first rung copes with it too (a board found running main.py)
    board.power.reset()
    assert board.lifecycle.recover("main.py running") == "interrupt"
    board.device.remove("/sd/main.py")


def test_stuck_board_needs_a_hard_reset(sim_server, attach, tmp_path: Path) -> None:
    board = attach(sim_server, fast_rig(boot_timeout=3.0))
    board.lifecycle.start()
    board.repl.exec_start("import micropython\nmicropython.kbd_intr(-1)\nwhile True:\n    pass\n")
    assert not board.lifecycle.responsive(timeout=1.0)
    assert board.lifecycle.recover("stuck with Ctrl-C disabled") == "hard reset"
    assert board.repl.exec("print(2)") == b"2\r\n"
    text = log_text(tmp_path)
    for line in ("recovery rung 1 (interrupt)", "recovery rung 2 (soft reset)", "recovery rung 3 (hard reset)",
                 "power sim: reset button", "recovered by rung 3 (hard reset)"):
        assert line in text
    assert board.recoveries == ["hard reset"]


def test_dead_board_is_a_boot_timeout_naming_the_rungs(sim_server, attach, tmp_path: Path) -> None:
    board = attach(sim_server, fast_rig(boot_timeout=0.5))
    board.lifecycle.start()
    from k210sim.control import ControlClient
    board.power.off()       # the board is off, and the rungs that would switch it on are no-ops
    board.power.on = lambda: None
    board.power.reset = lambda: None
    with pytest.raises(BootTimeout) as info:
        board.lifecycle.recover("test")
    message = str(info.value)
    assert "board did not recover (test); tried interrupt, soft reset, hard reset, power cycle" in message
    assert "serial log:" in message and "\n" not in message
    assert ControlClient(sim_server.control_path).status()["power"] is False


def test_device_api_memory_and_files(sim_server, attach) -> None:
    board = attach(sim_server)
    board.lifecycle.start()
    device = board.device
    mem = device.memory()
    assert mem.gc_free > 0 and mem.sys_heap_free > 0
    assert device.gc_heap_size() == board.profile.memory.gc_heap_default
    assert device.sd_present()
    data = os.urandom(3000)
    device.mkdir("/sd/hiltest")
    assert device.put(data, "/sd/hiltest/x.bin") == hashlib.sha256(data).hexdigest()
    assert "x.bin" in device.listdir("/sd/hiltest")
    assert device.size("/sd/hiltest/x.bin") == 3000
    assert device.get("/sd/hiltest/x.bin") == data
    device.remove("/sd/hiltest/x.bin")
    assert not device.exists("/sd/hiltest/x.bin")


def test_kpu_errors_are_typed(sim_server, attach) -> None:
    board = attach(sim_server)
    board.lifecycle.start()
    device, errors = board.device, board.profile.errors
    with pytest.raises(KpuLoadError) as info:
        device.kpu_load(0)
    assert info.value.text == errors.model_addr and info.value.code is None and info.value.model == "0x0"
    with pytest.raises(KpuLoadError) as info:
        device.kpu_load("/sd/model.bin")
    assert info.value.text == errors.path_format
    with pytest.raises(KpuLoadError) as info:
        device.kpu_load("/sd/missing.kmodel")     # MaixPy v0.6.2: 2005 from the loader, not ENOENT
    assert info.value.exc_type == "ValueError" and info.value.code == 2005
    assert info.value.text == "[MAIXPY]kpu: load error:2005, ERR_READ_FILE: read file failed"
    assert not isinstance(info.value, MemoryOverflow)


def test_sim_process_start_and_stop_by_pid(tmp_path: Path) -> None:
    sim = SimProcess(tmp_path / "state", "maix-bit", "maixpy-v0.6.2-minimum", pace="off")
    endpoints = sim.start()
    pid = sim.pid
    try:
        assert endpoints["pid"] == pid and endpoints["build"] == "maixpy-v0.6.2-minimum"
        assert Path(endpoints["pty"]).exists()
        os.kill(pid, 0)
    finally:
        sim.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_sim_process_failure_is_one_line(tmp_path: Path) -> None:
    sim = SimProcess(tmp_path / "state", "maix-bit", "no-such-profile", pace="off")
    with pytest.raises(SimError) as info:
        sim.start()
    assert "simulator exited with status 2 before it was ready" in str(info.value)
    assert "no-such-profile" in str(info.value)


def test_model_written_on_board_loads_and_frees(sim_server, attach) -> None:
    pytest.importorskip("hil.device.micropython.code.kmodel_writer")
    board = attach(sim_server)
    board.lifecycle.start()
    device = board.device
    digest = device.write_model_onboard("/sd/m.kmodel", 200_000, main_mem=65_536, seed=7)
    from hil.kmodel.build import build_v3
    assert digest == hashlib.sha256(build_v3(200_000, main_mem=65_536, seed=7)).hexdigest()
    before = device.memory()
    handle = device.kpu_load("/sd/m.kmodel")
    loaded = device.memory()
    assert loaded.sys_heap_free < before.sys_heap_free - 150_000
    device.kpu_deinit(handle)
    assert device.memory().sys_heap_free >= before.sys_heap_free - board.profile.memory.leak_tolerance
    device.kpu_load("/sd/m.kmodel")
    assert device.kpu_deinit_all() == 1


def test_big_put_switches_to_fast_baud_and_back(sim_server, attach) -> None:
    rig = fast_rig()
    rig = replace(rig, serial=replace(rig.serial, fast_baud=921_600))
    board = attach(sim_server, rig)
    board.lifecycle.start()
    device = board.device
    data = os.urandom(80_000)
    device.put(data, "/sd/big.bin")
    assert device.transfer.last_baud == 921_600
    assert board.link.baud == 115_200
    assert device.get("/sd/big.bin") == data
    assert device.transfer.last_baud == 921_600 and board.link.baud == 115_200
    assert board.repl.exec("print(5)") == b"5\r\n"
    device.remove("/sd/big.bin")


def test_set_gc_heap_size_reboots_and_holds(sim_server, attach, tmp_path: Path) -> None:
    board = attach(sim_server)
    board.lifecycle.start()
    device = board.device
    default = board.profile.memory.gc_heap_default
    before = device.memory()
    assert device.set_gc_heap_size(default // 2) == default // 2
    # MaixPy v0.6.2's gc_heap_size(n) only saves it (Maix_utils.c): the device API power-cycles
    assert "returned without a reboot; power-cycling for it" in log_text(tmp_path)
    assert device.memory().sys_heap_free > before.sys_heap_free      # the heap went to the system
    assert device.set_gc_heap_size(default) == default
    assert device.set_gc_heap_size(default) == default                # no change, no reboot


def test_model_flashed_over_isp_loads_from_its_offset(sim_server, attach, tmp_path: Path) -> None:
    build = pytest.importorskip("hil.kmodel.build")
    board = attach(sim_server)
    board.lifecycle.start()
    offset = board.rig.storage.model_offset
    board.drivers.flash.write(offset, build.build_v3(100_000, seed=3))
    assert "power sim: reset into ISP" in log_text(tmp_path)     # the pty has no DTR/RTS
    handle = board.device.kpu_load(offset)
    assert handle.model == f"{offset:#x}"
    board.device.kpu_deinit(handle)
