"""The csdk firmware flavour on a real emulated board: rigs/qemu-csdk.toml opened as a Board (the
qemu power driver's start-up hook builds the reference firmware and starts QEMU), the lifecycle
booting it through the agent's BOOT/HELLO lines, the device API and the domain drivers on the
agent client, reboots nobody announced, and the recovery ladder on a frozen or killed emulator.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from hil.agent.build import CC
from hil.agent.errors import AgentRebooted
from hil.agent.qemu import QEMU
from hil.board import Board
from hil.board.state import POWER_CYCLE, SOFT_RESET, UNEXPECTED, State
from hil.device.api import Unsupported
from hil.errors import KpuError, KpuLoadError, MemoryOverflow
from hil.kmodel.build import build_v3
from hil.kmodel.fixtures import Recipe
from hil.rig import load_rig

ROOT = Path(__file__).resolve().parent.parent


class Causes:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.reconnects = 0

    def rebooted(self, cause) -> None:
        self.seen.append(cause.name)

    def reconnected(self) -> None:
        self.reconnects += 1


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    for tool in (CC, QEMU):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (.ci/run installs it)")
    b = Board(load_rig("qemu-csdk", ROOT / "rigs"), results=tmp_path_factory.mktemp("csdk"))
    b.open()
    b.lifecycle.start()
    yield b
    b.close()


@pytest.fixture
def causes(board):
    board.lifecycle.ensure_ready()
    board.drivers.kpu.deinit_all()
    c = board.lifecycle.subscribe(Causes())
    yield c
    board.events.unsubscribe(c)


def qemu(board):
    return board.power.board


def test_the_start_up_hook_started_the_emulator_and_the_lifecycle_booted_it(board) -> None:
    assert board.port.startswith("socket://127.0.0.1:") and qemu(board).running
    assert board.firmware_version == board.profile.version
    assert "k210-hil agent" in board.banner and "build ref-" in board.banner
    assert board.lifecycle.state is State.RAW and board.repl is None


def test_device_api_on_the_agent(board, causes) -> None:
    d = board.device
    mem = d.memory()
    assert mem.gc_free is None and 6_000_000 < mem.sys_heap_free < 6 * 1024 * 1024
    assert not any(d.supports(f) for f in ("repl", "gc_heap", "flash_files", "kpu_forward"))
    assert "no interpreter (GC) heap" in d.why_not("gc_heap")
    with pytest.raises(Unsupported):
        d.gc_heap_size()
    data = os.urandom(3000)
    assert d.put(data, "/sd/hil/deep/dir/a.bin") == hashlib.sha256(data).hexdigest()
    assert d.get("/sd/hil/deep/dir/a.bin") == data and d.size("/sd/hil/deep/dir/a.bin") == 3000
    assert "deep" in d.listdir("/sd/hil") and d.listdir("/sd/hil/deep/dir") == ["a.bin"]
    d.mkdir("/sd/anything")                      # directories are implicit
    d.remove("/sd/hil/deep/dir/a.bin")
    assert not d.exists("/sd/hil/deep/dir/a.bin")
    d.remove("/sd/hil/deep/dir/a.bin", missing_ok=True)
    assert d.sd_present()


def test_flash_writes_go_through_the_firmware_without_a_reboot(board, causes) -> None:
    model = build_v3(12_000, seed=5)
    board.drivers.flash.write(0x600000, model)
    assert board.drivers.flash.head(0x600000, 64) == model[:64]
    assert board.drivers.flash.sha256(0x600000, len(model)) == hashlib.sha256(model).hexdigest()
    kpu = board.drivers.kpu
    kpu.deinit(kpu.load(0x600000))
    assert causes.seen == []                     # FPUT, not ISP: nothing rebooted


def test_sized_models_are_the_lead_grown_to_size(board, causes) -> None:
    drivers, d = board.drivers, board.device
    recipe = Recipe("v3", size=4_000_000, seed=7)
    path = drivers.models.sized(recipe, "/sd/hil/sized.kmodel")
    assert d.size(path) == 4_000_000
    before = d.memory().sys_heap_free
    h = drivers.kpu.load(path)
    assert before - d.memory().sys_heap_free >= 4_000_000 + recipe.main_mem   # the loader saw the full size
    drivers.kpu.deinit(h)
    writes = []
    real = d.write_sized
    d.write_sized = lambda *args: writes.append(args) or real(*args)
    try:
        drivers.models.sized(recipe, path)       # written once per session while the cache holds it
        assert writes == []
        drivers.files.forget(path)
        drivers.models.sized(recipe, path)
        assert len(writes) == 1
    finally:
        del d.write_sized
    with pytest.raises(MemoryOverflow) as info:
        drivers.kpu.load(drivers.models.sized(Recipe("v3", size=7_000_000, seed=7), "/sd/hil/sized.kmodel"))
    assert info.value.text == board.profile.errors.no_mem and info.value.code == 2006


def test_kpu_errors_are_typed(board, causes) -> None:
    kpu = board.drivers.kpu
    with pytest.raises(KpuLoadError) as info:
        kpu.load("/sd/hil/nothing_here.kmodel")
    assert info.value.text == board.profile.errors.missing_file
    h = kpu.load(board.drivers.models.good())
    kpu.deinit(h)
    with pytest.raises(KpuError, match="no model loaded with this id"):
        kpu.deinit(h)
    with pytest.raises(Unsupported, match="does not run them"):
        kpu.forward(h, [0.0])


def test_soft_reset_and_power_cycle_are_seen_through_boot_lines(board, causes) -> None:
    kpu = board.drivers.kpu
    kpu.load(board.drivers.models.good())
    board.lifecycle.soft_reset()
    assert causes.seen == [SOFT_RESET.name] and kpu.loaded == ()
    assert board.device.client.memory().models == 0          # the firmware restarted: nothing loaded
    pid = qemu(board).proc.pid
    board.lifecycle.power_cycle()
    assert causes.seen == [SOFT_RESET.name, POWER_CYCLE.name] and causes.reconnects == 1
    assert qemu(board).proc.pid != pid and board.lifecycle.state is State.RAW
    assert board.device.exists(board.drivers.models.good())     # the card survives a power cycle


def test_a_reboot_nobody_announced_is_published(board, causes) -> None:
    kpu, files = board.drivers.kpu, board.drivers.files
    kpu.load(board.drivers.models.good())
    qemu(board).qmp.command("system_reset")       # behind the lifecycle's back (a watchdog, a crash)
    time.sleep(0.3)
    with pytest.raises(AgentRebooted):
        board.device.memory()
    assert causes.seen == [UNEXPECTED.name] and kpu.loaded == () and files.files == {}
    board.lifecycle.ensure_ready()
    assert board.lifecycle.state is State.RAW and board.device.memory().sys_heap_free > 0


def test_a_frozen_board_comes_back_by_a_hard_reset(board, causes) -> None:
    qemu(board).hang()
    t0 = time.monotonic()
    board.lifecycle.ensure_ready()
    assert board.lifecycle.recoveries[-1] == "hard reset" and time.monotonic() - t0 < 30   # not hung
    assert board.device.memory().sys_heap_free > 0


def test_a_killed_emulator_comes_back(board, causes) -> None:
    os.kill(qemu(board).proc.pid, signal.SIGKILL)
    qemu(board).proc.wait(5)
    t0 = time.monotonic()
    board.lifecycle.ensure_ready()
    assert board.lifecycle.recoveries[-1] in ("hard reset", "power cycle") and time.monotonic() - t0 < 40
    assert board.device.memory().sys_heap_free > 0 and qemu(board).running
