"""Remote serial through ser2net: two simulated boards' ptys behind one ser2net (RFC 2217 on
127.0.0.1), reached as ``rfc2217://127.0.0.1:P?ign_set_control`` rigs whose power is the sim
driver on the simulator's control socket; the suites run on both under xdist.

ser2net on a pty never answers DTR/RTS (SET-CONTROL): without ``?ign_set_control`` pyserial gives
up opening the port, and resets must come from a power driver, not the modem lines
Needs the Debian package ``ser2net`` (4.x, YAML config).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from jsonl import read_records

ROOT = Path(__file__).resolve().parent.parent
SER2NET = shutil.which("ser2net") or ("/usr/sbin/ser2net" if os.access("/usr/sbin/ser2net", os.X_OK) else None)
pytestmark = pytest.mark.skipif(SER2NET is None, reason="ser2net is not installed "
                                                        "(Debian/Ubuntu: apt-get install -y ser2net)")
pytest.importorskip("xdist", reason="pytest-xdist is not installed")
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")
BOARDS = ("s2n-a", "s2n-b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"ser2net exited with {proc.returncode}: {log.read_text()[-1000:]}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"ser2net never listened on {port}: {log.read_text()[-1000:]}"
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def ser2net_rigs(tmp_path: Path) -> Iterator[Path]:
    procs: list[subprocess.Popen] = []
    rig_dir = tmp_path / "rigs"
    rig_dir.mkdir()
    try:
        config = ""
        ports = {}
        for name in BOARDS:
            sim = subprocess.Popen([sys.executable, "-m", "hil", "sim", "serve", "--state", str(tmp_path / name),
                                    "--rfc2217", "none", "--build", "maixpy-v0.6.2-full"], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=open(tmp_path / f"{name}.sim.log", "wb"))
            procs.append(sim)
            endpoints = json.loads(sim.stdout.readline())
            ports[name] = free_port()
            config += textwrap.dedent(f"""\
                connection: &{name.replace('-', '_')}
                    accepter: telnet(rfc2217),tcp,127.0.0.1,{ports[name]}
                    connector: serialdev,{endpoints['pty_device']},115200n81,local
                """)
            (rig_dir / f"{name}.toml").write_text(textwrap.dedent(f"""\
                [rig]
                name = "{name}"
                board = "maix-bit"
                description = "simulated Maix Bit behind ser2net"
                [serial]
                port = "rfc2217://127.0.0.1:{ports[name]}?ign_set_control"
                baud = 115200
                [power]
                driver = "sim"
                control = "{endpoints['control']}"
                [firmware]
                profile = "maixpy-v0.6.2-full"
                """))
        (tmp_path / "ser2net.yaml").write_text(config)
        log = tmp_path / "ser2net.log"
        ser2net = subprocess.Popen([SER2NET, "-n", "-d", "-c", str(tmp_path / "ser2net.yaml"), "-P",
                                    str(tmp_path / "ser2net.pid")], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        procs.append(ser2net)
        for name in BOARDS:
            wait_listening(ports[name], ser2net, log)
        yield rig_dir
    finally:
        for proc in reversed(procs):
            stop(proc)


POWER_TEST = '''
import pytest

@pytest.mark.power_cycle
def test_fresh_boot_by_sim_power(board, firmware):
    assert board.firmware_version == firmware.version
'''


def test_suites_through_ser2net_on_two_boards(ser2net_rigs: Path, tmp_path: Path) -> None:
    (tmp_path / "test_s2n_power.py").write_text(POWER_TEST)
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig-dir", str(ser2net_rigs),
                           "--hil-results", str(results), "--rig-lock-dir", str(tmp_path / "locks"),
                           "--rig", "s2n-a", "--rig", "s2n-b", "-n", "2", "suites/test_smoke.py",
                           str(tmp_path / "test_s2n_power.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
    run = next(p for p in results.iterdir() if p.is_dir() and p.name != "sim-state")
    headers = [read_records(p)[0] for p in sorted(run.glob("run-*.jsonl"))]
    assert sorted(h["rig"] for h in headers) == list(BOARDS)
    assert all(h["port"].startswith("rfc2217://127.0.0.1:") and h["port"].endswith("?ign_set_control")
               for h in headers)
    log = next(run.glob("logs/*test_fresh_boot_by_sim_power.log")).read_text()
    assert "power sim: off" in log and "power sim: on" in log
    assert not list((tmp_path / "locks").glob("*.lock"))


def test_without_ign_set_control_the_port_does_not_open(ser2net_rigs: Path, tmp_path: Path) -> None:
    """What the documented limit looks like: ser2net never acknowledges DTR/RTS on a pty."""
    rig = ser2net_rigs / "s2n-a.toml"
    rig.write_text(rig.read_text().replace("?ign_set_control", ""))
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig-dir", str(ser2net_rigs),
                           "--hil-results", str(tmp_path / "results"), "--rig-lock-dir", str(tmp_path / "locks"),
                           "--rig", "s2n-a", "suites/test_smoke.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: rig s2n-a: "), lines


@pytest.mark.slow
def test_full_suites_through_ser2net_on_two_boards(ser2net_rigs: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig-dir", str(ser2net_rigs),
                           "--hil-results", str(tmp_path / "results"), "--rig-lock-dir", str(tmp_path / "locks"),
                           "--rig", "s2n-a", "--rig", "s2n-b", "-n", "2", "suites"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " failed" not in done.stdout.splitlines()[-1] and " error" not in done.stdout.splitlines()[-1]
