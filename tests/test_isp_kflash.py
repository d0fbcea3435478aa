"""Unmodified kflash 1.1.6 against the simulated board's pty (under `hil sim wrap`), and our
client writing the same images: the flash contents must be identical."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hil.boards import get_board
from k210sim.builds import load_build
from hil.isp.flasher import IspFlasher
from hil.isp.image import KfpkgEntry, write_kfpkg
from k210sim.control import ControlClient
from k210sim.firmware_image import make_image
from k210sim.server import SimServer

sys.path.insert(0, str(Path(__file__).parent))
from test_isp_fakes import isp_only_factory  # noqa: E402

BUILD = "maixpy-v0.6.2-minimum"
MODEL_ADDR = 0x300000
KFLASH = shutil.which("kflash", path=str(Path(sys.executable).parent)) or shutil.which("kflash")

pytestmark = pytest.mark.skipif(KFLASH is None, reason="kflash is not installed")


def _model(size: int = 120_000) -> bytes:
    try:
        from hil.kmodel.build import build_v3
    except ImportError:
        return hashlib.shake_256(b"isp test model").digest(size)
    return build_v3(size)


def _hil(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil", *args], capture_output=True, text=True,
                          timeout=180, **kw)


def _kflash(state: Path, pty: str, board: str, image: Path | str, *extra: str) -> subprocess.CompletedProcess:
    r = _hil("sim", "wrap", "--state", str(state), "--", KFLASH, "-p", pty, "-B", board, "-n", *extra,
             str(image))
    assert r.returncode == 0, f"kflash failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


def _boot_after_reboot(sim: SimServer, since: int = 0) -> dict:
    """The boot event that follows the stub's reboot (after ``since``)."""
    ev = sim.events
    req = ev.wait_for(lambda e: e["kind"] == "reset-request" and e["reason"] == "isp reboot",
                      since=since, timeout=5.0)
    assert req is not None, "the stub never rebooted the board"
    boot = ev.wait_for(lambda e: e["kind"] == "boot", since=req["seq"], timeout=5.0)
    assert boot is not None, "no boot after the stub's reboot"
    return boot


def _flash_digest(sim: SimServer) -> str:
    flash = sim.storage.flash
    return hashlib.sha256(flash.read(0, flash.size)).hexdigest()


@pytest.fixture
def images(tmp_path):
    fw = tmp_path / "fw.bin"
    r = _hil("sim", "firmware", "--build", BUILD, "-o", str(fw))
    assert r.returncode == 0, r.stderr
    model = _model()
    pkg = write_kfpkg(tmp_path / "model.kfpkg", [KfpkgEntry(MODEL_ADDR, "m.kmodel", model, False)])
    return fw, pkg, model


def test_kflash_then_our_client_write_identical_flash(tmp_path, images):
    fw, pkg, model = images
    digests = {}
    with SimServer(tmp_path / "k", board="maix-bit", pace=False, rfc2217=None,
                   program_factory=isp_only_factory) as sim:
        ctl = ControlClient(sim.control_path)
        _kflash(tmp_path / "k", sim.endpoints["pty"], "bit", fw)
        boot = _boot_after_reboot(sim)
        assert (boot["mode"], boot["build"]) == ("firmware", BUILD)
        st = ctl.status()
        assert (st["mode"], st["build"]) == ("firmware", BUILD)
        img = make_image(load_build(BUILD))
        assert sim.storage.flash.read(0, len(img)) == img

        mark = sim.events.last_seq
        out = _kflash(tmp_path / "k", sim.endpoints["pty"], "bit", pkg)
        assert "Writing m.kmodel into 0x00300000" in out.stdout
        assert sim.storage.flash.read(MODEL_ADDR, len(model)) == model
        assert _boot_after_reboot(sim, mark)["build"] == BUILD
        digests["kflash"] = _flash_digest(sim)

    # Our client on the pty: no shim, so it enters ISP through the control socket.
    with SimServer(tmp_path / "o", board="maix-bit", pace=False, rfc2217=None,
                   program_factory=isp_only_factory) as sim:
        ctl = ControlClient(sim.control_path)
        with IspFlasher(sim.endpoints["pty"], get_board("maix-bit"),
                        enter_isp=lambda: ctl.reset(boot=True)) as f:
            f.flash_firmware(fw)
            f.flash_kfpkg(pkg)
            f.reboot()
        assert _boot_after_reboot(sim)["build"] == BUILD
        digests["ours"] = _flash_digest(sim)
    assert digests["ours"] == digests["kflash"]


def test_kflash_fast_on_maix_go_and_corrupt_image(tmp_path):
    # kflash -b 1500000 on goE: the stub's 0xD6 baud change. (kflash also changes the ROM's baud
    # here, 0xC6, and switches its port back to 115200 the instant it has written the boot
    # frame: whether the simulator's pty sees that frame at the old or the new baud is a race,
    # so -S keeps kflash off the ROM baud change and this test deterministic.)
    corrupt = tmp_path / "bad.kfpkg"
    r = _hil("sim", "firmware", "--build", BUILD, "--corrupt", "-o", str(corrupt))
    assert r.returncode == 0, r.stderr
    with SimServer(tmp_path / "s", board="maix-go", pace=False, rfc2217=None,
                   program_factory=isp_only_factory) as sim:
        ctl = ControlClient(sim.control_path)
        out = _kflash(tmp_path / "s", sim.endpoints["pty"], "goE", corrupt, "-b", "1500000", "-S")
        assert "Baudrate changed" in out.stdout
        isp = [e for e in ctl.events() if e["kind"] == "isp"]
        assert any(e["what"] == "stub-baud" and e["baud"] == 1500000 for e in isp)
        boot = _boot_after_reboot(sim)
        assert (boot["mode"], boot["reason"]) == ("silent", "image sha256 mismatch")
        assert ctl.status()["mode"] == "silent"


def test_kflash_erase(tmp_path):
    with SimServer(tmp_path / "s", board="maix-bit", pace=False, rfc2217=None,
                   program_factory=isp_only_factory) as sim:
        sim.storage.flash.write(0x300000, b"\x00" * 0x3000)
        out = _kflash(tmp_path / "s", sim.endpoints["pty"], "bit", "erase", "-A", "0x301000", "-L", "0x1000")
        assert "flash has been erased" in out.stdout
        zeros, erased = b"\x00" * 0x1000, b"\xff" * 0x1000
        assert sim.storage.flash.read(0x300000, 0x3000) == zeros + erased + zeros


def test_kflash_without_the_shim_fails_on_the_pty(tmp_path, images):
    fw, _pkg, _model = images
    with SimServer(tmp_path / "s", board="maix-bit", pace=False, rfc2217=None,
                   program_factory=isp_only_factory) as sim:
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SIM_MODEM_SOCK")}
        r = subprocess.run([KFLASH, "-p", sim.endpoints["pty"], "-B", "bit", "-n", str(fw)],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 1
        assert "Inappropriate ioctl for device" in r.stdout


def test_wrap_errors(tmp_path):
    r = _hil("sim", "wrap", "--state", str(tmp_path), "--", "true")
    assert r.returncode == 2 and "no simulator is listening" in r.stderr


MPREMOTE = shutil.which("mpremote", path=str(Path(sys.executable).parent)) or shutil.which("mpremote")


@pytest.mark.skipif(MPREMOTE is None, reason="mpremote is not installed")
def test_model_written_by_kflash_loads_from_its_offset(tmp_path, images):
    """The whole user path with real tools: kflash writes a .kfpkg with a model at 0x300000 on
    the simulated board running MaixPy, then mpremote runs kpu.load(0x300000) on it."""
    _, pkg, model = images
    with SimServer(tmp_path / "m", board="maix-bit", build=BUILD, pace=False, rfc2217=None) as sim:
        mark = sim.events.last_seq
        _kflash(tmp_path / "m", sim.endpoints["pty"], "bit", pkg)
        assert _boot_after_reboot(sim, mark)["build"] == BUILD
        code = ("import KPU as kpu\nfrom Maix import utils\nfree = utils.heap_free()\n"
                f"t = kpu.load({MODEL_ADDR:#x})\nprint('loaded', free - utils.heap_free())\n"
                "kpu.deinit(t)\nprint('freed', free - utils.heap_free())\n")
        out = subprocess.run([MPREMOTE, "connect", sim.endpoints["pty"], "exec", code],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout[-1000:] + out.stderr[-1000:]
        lines = dict(line.split() for line in out.stdout.splitlines() if line.startswith(("loaded", "freed")))
        assert int(lines["loaded"]) >= len(model), out.stdout
        # newlib trims the top back to less than a page above MINSIZE: within a page of before
        assert abs(int(lines["freed"])) <= 4096, out.stdout
