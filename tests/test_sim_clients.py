"""Real, unmodified serial clients against the full simulated board (MaixPy firmware).

mpremote and pyserial on the pty and on RFC 2217; pexpect on the pty driving the friendly REPL.
Skipped until k210sim.maixpy provides MaixPyFirmware.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import serial

maixpy = pytest.importorskip("k210sim.maixpy")
if not hasattr(maixpy, "MaixPyFirmware"):
    pytest.skip("k210sim.maixpy has no MaixPyFirmware yet", allow_module_level=True)

from k210sim.server import SimServer  # noqa: E402

MPREMOTE = [sys.executable, "-m", "mpremote"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with SimServer(tmp_path_factory.mktemp("sim") / "state", pace=False) as s:
        yield s


@pytest.fixture(params=["pty", "rfc2217"])
def port(request, sim):
    return sim.endpoints[request.param]


def mpremote(port: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run([*MPREMOTE, "connect", port, *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"mpremote {' '.join(args)} on {port}: {proc.stdout}{proc.stderr}"
    return proc


def test_mpremote_exec(port):
    assert mpremote(port, "exec", "print(1)").stdout.strip() == "1"


def test_mpremote_fs_ls(port):
    mpremote(port, "fs", "ls")


def test_mpremote_fs_cp_20k_round_trip(port, sim, tmp_path):
    data = os.urandom(20 * 1024)
    src, back = tmp_path / "x.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    mpremote(port, "fs", "cp", str(src), ":/sd/x.bin")
    assert (sim.storage.sd_root / "x.bin").read_bytes() == data
    mpremote(port, "fs", "cp", ":/sd/x.bin", str(back))
    assert back.read_bytes() == data


def test_pyserial_raw_repl(port):
    with serial.serial_for_url(port, 115200, timeout=5) as s:
        s.write(b"\r\x03\x03")
        time.sleep(0.2)
        s.reset_input_buffer()
        s.write(b"\x01")
        assert s.read_until(b"raw REPL; CTRL-B to exit\r\n>").endswith(b">")
        s.write(b"print(6*7)\x04")
        assert s.read_until(b"\x04>").endswith(b"OK42\r\n\x04\x04>")
        s.write(b"\x02")
        assert s.read_until(b">>> ").endswith(b">>> ")


def test_pexpect_friendly_repl(sim):
    import pexpect.fdpexpect

    with serial.Serial(sim.endpoints["pty"], 115200, timeout=0) as s:
        child = pexpect.fdpexpect.fdspawn(s.fileno(), timeout=10)
        child.send(b"\r\x03\x02")
        child.expect_exact(b">>> ")
        child.send(b"1+1\r")
        child.expect_exact(b"1+1\r\n2\r\n>>> ")


@pytest.mark.slow
def test_mpremote_fs_cp_at_line_pace(tmp_path):
    """The same copy with pacing on: what a real 115200 line would give."""
    with SimServer(tmp_path / "paced", pace=True, rfc2217=None) as paced:
        data = os.urandom(20 * 1024)
        src, back = tmp_path / "x.bin", tmp_path / "back.bin"
        src.write_bytes(data)
        mpremote(paced.endpoints["pty"], "fs", "cp", str(src), ":/sd/x.bin", timeout=120)
        mpremote(paced.endpoints["pty"], "fs", "cp", ":/sd/x.bin", str(back), timeout=120)
        assert back.read_bytes() == data
