"""Smoke suite: the rig boots its firmware (and it says it is the build the profile describes),
the REPL answers (firmware without one skips that), files round-trip on /sd with sha256 checks,
and the memory figures the other suites rely on can be read."""
from __future__ import annotations

import hashlib
import random

import pytest

from hil.device.micropython.code import device as programs

from . import kpu_support as ks

SMOKE_FILE = "/sd/hil_smoke.bin"


def test_boot_banner(board, firmware) -> None:
    # the session booted the board; the banner must name the build the rig says it runs
    assert board.firmware_version, "the board did not say which firmware it runs when it booted"
    assert board.firmware_version == firmware.version, (
        f"rig runs {board.firmware_version}, its firmware profile {firmware.name} describes {firmware.version}")


def test_repl_round_trip(repl) -> None:
    assert repl.exec(programs.ROUND_TRIP) == programs.ROUND_TRIP_REPLY
    assert repl.eval(programs.LITERALS) == [1, "two", 3.5, None]


@pytest.mark.requires_sd
def test_put_get_on_sd(device) -> None:
    data = random.Random(210).randbytes(12_345)
    want = hashlib.sha256(data).hexdigest()
    device.remove(SMOKE_FILE, missing_ok=True)
    assert device.put(data, SMOKE_FILE) == want
    assert device.exists(SMOKE_FILE) and not device.exists(SMOKE_FILE + ".part")
    assert device.sha256(SMOKE_FILE) == want
    assert device.get(SMOKE_FILE) == data
    device.remove(SMOKE_FILE)
    assert not device.exists(SMOKE_FILE)


def test_memory_figures(device, measure) -> None:
    """The system heap; then the GC heap, which firmware without an interpreter skips, saying so."""
    mem = device.memory()
    measure("sys_heap_free_bytes", mem.sys_heap_free, "bytes", low=64 * 1024, high=6 * 1024 * 1024)
    ks.require(device, "gc_heap")
    heap = device.gc_heap_size()
    measure("gc_heap_size_bytes", heap, "bytes", low=64 * 1024, high=6 * 1024 * 1024)
    measure("gc_free_bytes", mem.gc_free, "bytes", low=1, high=heap)
