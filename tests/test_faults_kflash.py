"""kflash's fast mode through the modem-line shim, *with* the ROM baud change (no -S).

kflash writes the ROM's boot frame and at once switches its port back to 115200; on a pty the
simulator could see that frame at either baud. The shim's tcsetattr barrier (DRAIN on
modem.sock before a speed change) makes the old baud hold for the bytes written before it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from k210sim.control import ControlClient
from k210sim.server import SimServer

sys.path.insert(0, str(Path(__file__).parent))
from test_isp_fakes import isp_only_factory  # noqa: E402

BUILD = "maixpy-v0.6.2-minimum"
KFLASH = shutil.which("kflash", path=str(Path(sys.executable).parent)) or shutil.which("kflash")

pytestmark = pytest.mark.skipif(KFLASH is None, reason="kflash is not installed")


def _hil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil", *args], capture_output=True, text=True,
                          timeout=180)


def test_kflash_fast_with_rom_baud_change_on_maix_go(tmp_path):
    fw = tmp_path / "fw.bin"
    r = _hil("sim", "firmware", "--build", BUILD, "-o", str(fw))
    assert r.returncode == 0, r.stderr
    with SimServer(tmp_path / "s", board="maix-go", pace=False, rfc2217=None,
                   program_factory=isp_only_factory) as sim:
        r = _hil("sim", "wrap", "--state", str(tmp_path / "s"), "--", KFLASH, "-p", sim.endpoints["pty"],
                 "-B", "goE", "-n", "-b", "1500000", str(fw))
        assert r.returncode == 0, f"kflash failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        isp = [e for e in ControlClient(sim.control_path).events() if e["kind"] == "isp"]
        assert any(e["what"] == "rom-baud" for e in isp), isp
        assert any(e["what"] == "stub-baud" and e["baud"] == 1500000 for e in isp), isp
        req = sim.events.wait_for(lambda e: e["kind"] == "reset-request", timeout=5.0)
        assert req is not None
        boot = sim.events.wait_for(lambda e: e["kind"] == "boot", since=req["seq"], timeout=5.0)
        assert boot is not None and (boot["mode"], boot["build"]) == ("firmware", BUILD)


def test_long_state_dir_socket_path_is_shortened(tmp_path):
    from k210sim import wrap
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with SimServer(deep, board="maix-bit", pace=False, rfc2217=None,
                   program_factory=isp_only_factory):
        env = wrap.wrap_env(deep)
        assert len(env["SIM_MODEM_SOCK"].encode()) <= 107
        assert Path(env["SIM_MODEM_SOCK"]).samefile(deep / wrap.MODEM_SOCK)


class _Recorder:
    """A CPU program that keeps every byte its UART receives (at 115200)."""
    got = bytearray()

    def __init__(self, ctx) -> None:
        import threading
        self.uart = ctx.uart
        self._stop = threading.Event()

    def run(self) -> None:
        from k210sim.program import ProgramHalted
        try:
            while not self._stop.is_set():
                _Recorder.got += self.uart.read(4096, timeout=0.05)
        except ProgramHalted:
            return

    def halt(self) -> None:
        self._stop.set()


CLIENT = """
import serial, sys
p = serial.Serial(sys.argv[1], 115200, timeout=0.1)
p.write(b"U" * 2000)          # 174 ms of line time at 115200
p.baudrate = 1500000          # at once, as kflash does after its boot frame
p.close()
"""


def test_bytes_written_before_a_baud_change_arrive_at_the_old_baud(tmp_path):
    """Paced line: without the barrier the tail of the 2000 bytes would be read at 1.5 Mbaud."""
    from k210sim import wrap
    _Recorder.got = bytearray()
    with SimServer(tmp_path / "s", board="maix-bit", pace=True, rfc2217=None,
                   program_factory=lambda mode, ctx, build: _Recorder(ctx)) as sim:
        r = subprocess.run([sys.executable, "-c", CLIENT, sim.endpoints["pty"]], capture_output=True,
                           text=True, timeout=30, env=wrap.wrap_env(tmp_path / "s"))
        assert r.returncode == 0, r.stderr
        assert bytes(_Recorder.got) == b"U" * 2000
