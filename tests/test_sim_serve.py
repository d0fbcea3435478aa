"""`hil sim serve` as a process, and SimServer's life cycle: state, locks, restarts, bad input."""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from k210sim.errors import BuildError, SimError
from k210sim.control import ControlClient
from k210sim.server import SimServer
from sim_board_fakes import Factory

REPO = Path(__file__).resolve().parent.parent


def serve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hil", "sim", "serve", *args]


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def start_serve(*args: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(serve_cmd(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    if not ready:
        proc.kill()
        proc.wait()
        pytest.fail("hil sim serve printed nothing within 20 s")
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        pytest.fail(f"hil sim serve exited {proc.returncode}: {proc.stderr.read()}")
    return proc, json.loads(line)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"hil sim serve ignored signal {sig}")
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_endpoints_answers_and_exits_0_on_signal(tmp_path, sig):
    state = tmp_path / "state"
    proc, ep = start_serve("--state", str(state), "--pace", "off", "--tcp", "127.0.0.1:0")
    try:
        assert set(ep) >= {"pty", "pty_device", "rfc2217", "tcp", "control", "state", "pid", "board", "build"}
        assert ep["pty"] == str(state / "ttyMAIX0") and os.readlink(ep["pty"]) == ep["pty_device"]
        assert ep["control"] == str(state / "control.sock") and ep["state"] == str(state)
        # hil sim serve launches python -m k210sim serve: the JSON names the simulator, its child
        assert _parent_of(ep["pid"]) == proc.pid and ep["board"] == "maix-bit"
        assert ep["build"] == "maixpy-v0.6.2-full"             # a new state dir gets the default build
        assert ep["rfc2217"].startswith("rfc2217://127.0.0.1:") and not ep["rfc2217"].endswith(":0")
        assert ep["tcp"].startswith("socket://127.0.0.1:") and not ep["tcp"].endswith(":0")
        st = ControlClient(ep["control"]).status()
        assert st["power"] and st["board"] == "maix-bit" and st["boots"] == 1
        with serial.serial_for_url(ep["pty"], 115200, timeout=0.2):
            pass
        with serial.serial_for_url(ep["rfc2217"], 115200, timeout=0.2):
            pass
    finally:
        code, out, err = stop(proc, sig)
    assert code == 0, err
    assert out == "" and err == ""
    left = {p.name for p in state.iterdir()}
    assert not left & {"ttyMAIX0", "control.sock", "modem.sock"}
    assert {"flash.img", "sd", "flashfs"} <= left
    with SimServer(state, rfc2217=None, pace=False, program_factory=Factory()):
        pass                                                    # the lock was released


@pytest.mark.parametrize("args, message", [
    (["--build", "no-such-build"], "unknown firmware build 'no-such-build'"),
    (["--board", "maix-nano"], "unknown board 'maix-nano'"),
    (["--rfc2217", "0.0.0.0:0"], "not a loopback address"),
    (["--tcp", "192.0.2.7:0"], "not a loopback address"),
    (["--rfc2217", "127.0.0.1"], "expected HOST:PORT"),
    (["--rfc2217", "127.0.0.1:{busy}"], "address already in use"),
    (["--state", "{file}/sub"], "cannot create state dir"),
])
def test_serve_bad_input_exits_nonzero_with_one_line(tmp_path, args, message):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    fill = {"busy": busy.getsockname()[1], "file": a_file}
    argv = [a.format(**fill) for a in args]
    if "--state" not in argv:
        argv = ["--state", str(tmp_path / "state"), *argv]
    try:
        proc = subprocess.run(serve_cmd(*argv, "--pace", "off"), cwd=REPO, capture_output=True,
                              text=True, timeout=30)
    finally:
        busy.close()
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("k210sim: ") and message in lines[0], proc.stderr
    state = tmp_path / "state"
    if state.exists():   # a refused start leaves no socket, link or lock holder behind
        assert not {p.name for p in state.iterdir()} & {"ttyMAIX0", "control.sock", "modem.sock"}


def test_state_dir_in_use_is_refused_and_killed_simulator_is_taken_over(tmp_path):
    state = tmp_path / "state"
    proc, ep = start_serve("--state", str(state), "--pace", "off", "--rfc2217", "none")
    try:
        assert ep["rfc2217"] is None
        with pytest.raises(SimError, match=f"in use by simulator pid {ep['pid']}"):
            SimServer(state, rfc2217=None).start()
        assert ControlClient(ep["control"]).status()["power"]   # the refusal did not disturb it
    finally:
        os.kill(ep["pid"], signal.SIGKILL)                       # the simulator: no clean-up at all
        proc.communicate(timeout=10)                             # its launcher then exits
    assert (state / "control.sock").exists()                     # stale leftovers
    with SimServer(state, rfc2217=None, pace=False, program_factory=Factory()) as sim:
        assert ControlClient(sim.control_path).status()["boots"] == 1


def test_state_survives_restart(tmp_path):
    state = tmp_path / "state"
    with SimServer(state, rfc2217=None, pace=False, program_factory=Factory(),
                   build="maixpy-v0.6.2-minimum") as sim:
        assert sim.endpoints["build"] == "maixpy-v0.6.2-minimum"
        sim.storage.flash.write(0x300000, b"model bytes")
        (sim.storage.sd_root / "m.kmodel").write_bytes(b"on the card")
        (sim.storage.flashfs_root / "boot.py").write_text("print('hi')\n")
        sim.storage.set_config("gc_heap_size", 0x200000)
        ControlClient(sim.control_path).sd(False)
    with SimServer(state, rfc2217=None, pace=False, program_factory=Factory()) as sim:
        assert sim.endpoints["build"] == "maixpy-v0.6.2-minimum"      # no --build: flash kept
        assert sim.board.status()["build"] == "maixpy-v0.6.2-minimum"
        assert sim.storage.flash.read(0x300000, 11) == b"model bytes"
        assert (state / "sd" / "m.kmodel").read_bytes() == b"on the card"
        assert (sim.storage.flashfs_root / "boot.py").read_text() == "print('hi')\n"
        assert sim.storage.get_config("gc_heap_size") == 0x200000
        assert ControlClient(sim.control_path).status()["sd"] is False


def test_interrupted_flash_write_is_recovered_on_restart(tmp_path):
    state = tmp_path / "state"
    with SimServer(state, rfc2217=None, pace=False, program_factory=Factory()) as sim:
        sim.storage.flash._log(b"W", 0x500000, 6, b"kmodel")   # journalled, never applied: "killed"
    with SimServer(state, rfc2217=None, pace=False, program_factory=Factory()) as sim:
        assert sim.storage.flash.read(0x500000, 6) == b"kmodel"
        rec = [e for e in sim.events.since(0) if e["kind"] == "flash-recovered"]
        assert rec and rec[0]["action"].startswith("replayed W 0x500000")


def test_build_option_changes_what_boots(tmp_path):
    factory = Factory()
    with SimServer(tmp_path / "s", rfc2217=None, pace=False, program_factory=factory,
                   build="maixpy-v0.6.2-full-regressed") as sim:
        assert sim.board.status()["build"] == "maixpy-v0.6.2-full-regressed"
    assert factory.boots == [("firmware", "maixpy-v0.6.2-full-regressed")]


def test_in_process_start_errors(tmp_path):
    with pytest.raises(SimError, match="not a loopback address"):
        SimServer(tmp_path / "a", rfc2217=("10.1.2.3", 0)).start()
    with pytest.raises(BuildError):
        SimServer(tmp_path / "b", build="nope").start()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()   # checked before touching
    with SimServer(tmp_path / "c", rfc2217=("0.0.0.0", 0), listen_any=True, pace=False,
                   program_factory=Factory()) as sim:
        assert sim.endpoints["rfc2217"].startswith("rfc2217://0.0.0.0:")


def test_long_state_path_still_gets_its_sockets(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with SimServer(deep, rfc2217=None, pace=False, program_factory=Factory()) as sim:
        assert len(str(sim.control_path)) > 107
        assert ControlClient(sim.control_path).status()["power"]
    assert not (deep / "control.sock").exists()


def test_killing_the_launcher_stops_its_simulator(tmp_path):
    """hil sim serve is a launcher: if it dies, the simulator it started goes too (no orphan)."""
    proc, ep = start_serve("--state", str(tmp_path / "state"), "--pace", "off", "--rfc2217", "none")
    proc.kill()
    proc.communicate(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(ep["pid"], 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(ep["pid"], signal.SIGKILL)
    pytest.fail(f"simulator pid {ep['pid']} outlived its killed launcher")
