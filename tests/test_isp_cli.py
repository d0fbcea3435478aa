"""`hil flash` and our client over the simulator's RFC 2217 port (DTR/RTS over the network)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil.boards import get_board
from k210sim.builds import load_build
from hil.isp.flasher import IspFlasher
from k210sim.firmware_image import make_image
from k210sim.server import SimServer

sys.path.insert(0, str(Path(__file__).parent))
from test_isp_fakes import isp_only_factory  # noqa: E402

BUILD = "maixpy-v0.6.2-minimum"


def _hil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture
def sim(tmp_path):
    with SimServer(tmp_path / "state", board="maix-bit", pace=False,
                   program_factory=isp_only_factory) as s:
        yield s


def test_hil_flash_firmware_and_model_on_a_sim_rig(tmp_path, sim):
    fw = tmp_path / "fw.bin"
    assert _hil("sim", "firmware", "--build", BUILD, "-o", str(fw)).returncode == 0
    model = tmp_path / "m.kmodel"
    model.write_bytes(os.urandom(40000))
    state = sim.endpoints["state"]
    r = _hil("flash", "--rig", "sim", "--sim-state", state, str(fw))
    assert r.returncode == 0, r.stderr
    assert "flashed fw.bin" in r.stdout and "firmware: 100%" in r.stderr
    r = _hil("flash", "--rig", "sim", "--sim-state", state, "--addr", "0x300000", str(model))
    assert r.returncode == 0, r.stderr
    img = make_image(load_build(BUILD))
    assert sim.storage.flash.read(0, len(img)) == img
    assert sim.storage.flash.read(0x300000, 40000) == model.read_bytes()


def test_hil_flash_errors(tmp_path, sim):
    model = tmp_path / "m.kmodel"
    model.write_bytes(b"x" * 100)
    state = sim.endpoints["state"]
    r = _hil("flash", "--rig", "sim", "--sim-state", state, "--addr", "0x100000", "--firmware-end", "0x1c8025",
             str(model))
    assert r.returncode == 2 and "0x00100000 overlaps the firmware" in r.stderr
    r = _hil("flash", "--rig", "sim", "--sim-state", state, "--addr", "0x300001", str(model))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == (
        "hil: --addr 0x300001: must be a multiple of 4 KiB (0x1000): the flash is erased in 4 KiB sectors "
        "(e.g. 0x300000)")
    r = _hil("flash", "--rig", "sim", str(model))
    assert r.returncode == 2 and "rig sim is simulated" in r.stderr
    r = _hil("flash", "--rig", "sim", "--sim-state", state, str(tmp_path / "missing.bin"))
    assert r.returncode == 2 and "missing.bin: cannot read: no such file" in r.stderr
    r = _hil("flash", "--rig", "sim", "--sim-state", state, "--addr", "0xfff000", str(model) + "x")
    assert r.returncode == 2


def test_hil_flash_addr_checks_the_image_on_the_board_not_the_profile(tmp_path):
    """The rig's profile (full) says its image ends at 0x1c8025; the board runs the minimum build,
    whose header at flash 0 says 0xd0025: that is what --addr is checked against."""
    model = tmp_path / "m.kmodel"
    model.write_bytes(os.urandom(5000))
    with SimServer(tmp_path / "state", board="maix-bit", build=BUILD, pace=False) as sim:
        state = sim.endpoints["state"]
        end = 851_968 + 37
        r = _hil("flash", "--rig", "sim", "--sim-state", state, "--addr", "0xd0000", str(model))
        assert r.returncode == 2, r.stderr
        assert f"the firmware on the board ends at {end:#x} (its image header at flash 0)" in r.stderr
        assert r.stderr.strip().splitlines()[-1] == (
            f"hil: m.kmodel at 0x000d0000 overlaps the firmware image at 0x00000000..{end:#010x}; "
            "choose an address >= 0xd1000")
        r = _hil("flash", "--rig", "sim", "--sim-state", state, "--addr", "0x100000", str(model))
        assert r.returncode == 0, r.stderr
        assert sim.storage.flash.read(0x100000, 5000) == model.read_bytes()
        assert "\r" not in r.stderr and "m.kmodel: 100% 4.9 KiB in " in r.stderr   # one final line, not a tty


def test_client_over_rfc2217_drives_dtr_rts(sim):
    data = os.urandom(30000)
    mark = sim.events.last_seq
    with IspFlasher(sim.endpoints["rfc2217"], get_board("maix-bit"), isp_baud=1500000) as f:
        f.flash_data(0x500000, data)
        f.reboot()
    assert sim.storage.flash.read(0x500000, len(data)) == data
    kinds = [(e["kind"], e.get("mode")) for e in sim.events.since(mark)]
    assert ("boot", "isp") in kinds
    assert [e for e in sim.events.since(mark) if e["kind"] == "lines" and e["source"] == "rfc2217"]


def test_client_stage0_over_the_pty_on_maix_go(tmp_path):
    # ROM baud change (0xC6) then boot: the boot frame must reach the board before the host
    # port goes back to 115200 (see IspSession.rom_boot).
    data = os.urandom(70000)
    with SimServer(tmp_path / "go", board="maix-go", pace=False, rfc2217=None,
                   program_factory=isp_only_factory) as s:
        from k210sim.control import ControlClient
        ctl = ControlClient(s.control_path)
        with IspFlasher(s.endpoints["pty"], get_board("maix-go"), isp_baud=1500000,
                        enter_isp=lambda: ctl.reset(boot=True)) as f:
            f.flash_data(0x300000, data)
            assert not f.stats.notes and f.stats.baud == 1500000
            f.reboot()
        assert s.storage.flash.read(0x300000, len(data)) == data
        isp = [e.get("what") for e in s.events.since(0) if e["kind"] == "isp"]
        assert "rom-baud" in isp and "stub-baud" in isp
