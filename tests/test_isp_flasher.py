"""IspFlasher against the simulated board's IspTarget (in process, no pty): flows and faults."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from hil.boards import get_board
from hil.errors import IspError
from k210sim.builds import load_build
from hil.isp.flasher import IspFlasher
from hil.isp.image import KfpkgEntry, write_kfpkg
from hil.isp.loader import Retries, Timeouts
from k210sim.firmware_image import make_image, make_payload
from k210sim.isp.target import IspFaults

sys.path.insert(0, str(Path(__file__).parent))
from test_isp_fakes import loop_rig  # noqa: E402

BUILD = "maixpy-v0.6.2-minimum"
# Short timeouts so the fault tests finish quickly; the defaults are bounded too, only longer.
FAST_FAIL = dict(timeouts=Timeouts(greet=0.3, reply=0.3, write_extra=0.5, busy_budget=3.0),
                 retries=Retries(greet_rounds=2, stub_greet=3))
HANG_GUARD_S = 15.0   # a give-up must come well within this; it is a hang check, not a benchmark


def _flasher(rig, board="maix-bit", **kw) -> IspFlasher:
    return IspFlasher(rig.port(), get_board(board), **kw)


def test_flash_firmware_and_model_then_boot(tmp_path):
    build = load_build(BUILD)
    model = os.urandom(70000)
    with loop_rig(tmp_path) as rig, _flasher(rig) as f:
        n = f.flash_firmware(make_payload(build))
        assert n == len(make_image(build))
        f.flash_data(0x300000, model, name="m.kmodel")
        f.reboot()
        st = rig.wait_mode("firmware")
        assert st["build"] == BUILD
        assert rig.storage.flash.read(0, n) == make_image(build)
        assert rig.storage.flash.read(0x300000, len(model)) == model
        assert f.stats.bytes_written == n + len(model)


def test_already_wrapped_image_is_written_as_is(tmp_path):
    img = make_image(load_build(BUILD))
    with loop_rig(tmp_path) as rig, _flasher(rig) as f:
        assert f.flash_firmware(img) == len(img)
        assert rig.storage.flash.read(0, len(img)) == img


@pytest.mark.parametrize("board", ["maix-bit", "maix-go"])
def test_fast_baud(tmp_path, board):
    data = os.urandom(200000)
    with loop_rig(tmp_path, board=board) as rig, _flasher(rig, board, isp_baud=1500000) as f:
        f.flash_data(0x400000, data)
        assert f.stats.baud == 1500000 and not f.stats.notes
        kinds = [e.get("what") for e in rig.events.since(0) if e["kind"] == "isp"]
        assert "stub-baud" in kinds
        assert ("rom-baud" in kinds) == (board == "maix-go")   # stage 0 only where kflash uses it
        f.reboot()
        assert rig.storage.flash.read(0x400000, len(data)) == data


def test_fast_baud_falls_back_when_stub_ignores_it(tmp_path):
    data = os.urandom(5000)
    with loop_rig(tmp_path, isp_faults=IspFaults(ignore_stub_baud=True)) as rig, \
            _flasher(rig, isp_baud=1500000, **FAST_FAIL) as f:
        f.flash_data(0x300000, data)
        assert f.stats.baud == 115200
        assert any("did not answer at 1500000" in n for n in f.stats.notes)
        assert rig.storage.flash.read(0x300000, len(data)) == data


def test_stage0_falls_back_when_rom_ignores_it(tmp_path):
    with loop_rig(tmp_path, board="maix-go", isp_faults=IspFaults(ignore_rom_baud=True)) as rig, \
            _flasher(rig, "maix-go", isp_baud=1500000, **FAST_FAIL) as f:
        f.flash_data(0x300000, b"abc")
        assert any("ROM" in n and "1500000" in n for n in f.stats.notes)
        assert f.stats.baud == 1500000    # the stub stage still switched


def test_pty_like_port_needs_enter_isp(tmp_path):
    with loop_rig(tmp_path) as rig:
        with IspFlasher(rig.port(lines=False), get_board("maix-bit")) as f:
            with pytest.raises(IspError, match="cannot drive DTR/RTS.*no enter_isp"):
                f.flash_data(0x300000, b"x")
        with IspFlasher(rig.port(lines=False), get_board("maix-bit"), enter_isp=rig.enter_isp) as f:
            f.flash_data(0x300000, b"hello")
            f.reboot()
        assert rig.storage.flash.read(0x300000, 5) == b"hello"


def test_kfpkg(tmp_path):
    build = load_build(BUILD)
    model = os.urandom(50000)
    pkg = write_kfpkg(tmp_path / "p.kfpkg", [KfpkgEntry(0, "fw.bin", make_payload(build), True),
                                             KfpkgEntry(0x300000, "m.kmodel", model, False)])
    with loop_rig(tmp_path / "s") as rig, _flasher(rig) as f:
        f.flash_firmware(pkg)
        img = make_image(build)
        assert rig.storage.flash.read(0, len(img)) == img
        assert rig.storage.flash.read(0x300000, len(model)) == model


def test_erase_with_busy_status(tmp_path):
    with loop_rig(tmp_path, isp_faults=IspFaults(erase_busy_polls=2)) as rig, _flasher(rig) as f:
        f.flash_data(0x300000, b"\x00" * 8192)
        f.erase(0x300000, 4096)
        assert rig.storage.flash.read(0x300000, 8192) == b"\xff" * 4096 + b"\x00" * 4096


def test_write_busy_is_waited_for(tmp_path):
    with loop_rig(tmp_path, isp_faults=IspFaults(write_busy_replies=2)) as rig, _flasher(rig) as f:
        f.flash_data(0x300000, b"data")
        assert rig.storage.flash.read(0x300000, 4) == b"data"


def test_bad_inputs_name_the_address(tmp_path):
    with loop_rig(tmp_path) as rig, _flasher(rig) as f:
        with pytest.raises(IspError, match="0x00ff0000.*past the end"):
            f.flash_data(0xFF0000, b"x" * 0x20000)
        with pytest.raises(IspError, match="0x00300100.*4 KiB-aligned"):
            f.erase(0x300100, 4096)
        with pytest.raises(IspError, match="0x00100000 overlaps the firmware"):
            f.flash_data(0x100000, b"x", firmware_end=0x1C8000)
        f.flash_firmware(make_payload(load_build(BUILD)))
        with pytest.raises(IspError, match="0x00010000 overlaps the firmware"):
            f.flash_data(0x10000, b"model")     # checked against the image flashed just now


def _fails_fast(fn, match: str) -> str:
    t0 = time.monotonic()
    with pytest.raises(IspError, match=match) as info:
        fn()
    assert time.monotonic() - t0 < HANG_GUARD_S
    return str(info.value)


def test_board_that_never_greets(tmp_path):
    with loop_rig(tmp_path, isp_faults=IspFaults(rom_silent=True)) as rig, _flasher(rig, **FAST_FAIL) as f:
        msg = _fails_fast(lambda: f.flash_data(0x300000, b"x"), "ROM greeting")
        assert "NOP 0xc2 at 0x00000000" in msg and "last reply: none" in msg and "loop" in msg


def test_board_with_isp_disabled(tmp_path):
    with loop_rig(tmp_path, isp=False) as rig, _flasher(rig, **FAST_FAIL) as f:
        _fails_fast(lambda: f.flash_firmware(b"payload"), "ROM greeting.*no answer")


def test_wrong_board_wiring(tmp_path):
    # The rig says Maix Go (kd233 wiring) but the board is a Maix Bit (dan wiring): the reset
    # sequence never lands in the ROM.
    with loop_rig(tmp_path, board="maix-bit") as rig, _flasher(rig, "maix-go", **FAST_FAIL) as f:
        msg = _fails_fast(lambda: f.flash_data(0x300000, b"x"), "ROM greeting")
        assert "wiring (kd233)" in msg


def test_stub_replies_bad_checksum(tmp_path):
    with loop_rig(tmp_path, isp_faults=IspFaults(write_reason=0xE2)) as rig, _flasher(rig, **FAST_FAIL) as f:
        msg = _fails_fast(lambda: f.flash_data(0x300000, b"x" * 100), "flash write")
        assert "FLASH_WRITE 0xd4 at 0x00300000" in msg and "BAD_DATA_CHECKSUM" in msg


def test_reply_timeout_mid_write(tmp_path):
    data = os.urandom(5 * 65536)
    # At 1.5 Mbaud the per-frame reply timeout (line time of 64 KiB + write_extra) is short.
    with loop_rig(tmp_path, isp_faults=IspFaults(silent_after_writes=2)) as rig, \
            _flasher(rig, isp_baud=1500000, **FAST_FAIL) as f:
        msg = _fails_fast(lambda: f.flash_data(0x300000, data), "flash write")
        assert "at 0x00310000" in msg and "no reply within" in msg


def test_foreign_stub_never_answers(tmp_path):
    with loop_rig(tmp_path) as rig, _flasher(rig, stub=b"\x13\x00\x00\x00" * 256, **FAST_FAIL) as f:
        msg = _fails_fast(lambda: f.flash_data(0x300000, b"x"), "stub greeting")
        assert "0x80000000" in msg
