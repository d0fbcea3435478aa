"""A rig that keeps failing is taken out of service for the rest of the run (hil/health.py).

Two ``pytest --rig`` runs in a subprocess:
- a board that never answers (a TCP port that accepts and says nothing, power by a command):
  the first three board tests are broken, the rest are skipped with the reason, a test that
  does not need the board still runs, and every one of them is in the run record. The port URL
  carries a password and the power command a token from the environment: neither may appear
  in the run record, the serial logs or the terminal output.
- a simulated board that hangs for good in the middle of a run (slow).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jsonl import read_records

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cr3t-pw-77"
TOKEN = "tok-9f8e7d6c5b4a"

DEAD_SUITE = '''
def test_1(repl):
    repl.exec("print(1)")

def test_2(device):
    device.memory()

def test_3(board):
    board.lifecycle.soft_reset()

def test_4(repl):
    repl.exec("print(4)")

def test_5(device):
    device.listdir("/sd")

def test_no_board_needed(rig):
    assert rig.name == "dead"

def test_6(repl):
    repl.exec("print(6)")
'''

DEAD_RIG = '''
[rig]
name = "dead"
board = "maix-bit"

[serial]
port = "socket://hil:{password}@127.0.0.1:{port}"
boot_timeout = 1.0

[power]
driver = "command"
on = ["true", "{token}"]
off = ["true"]
off_time = 0.0
timeout = 5.0

[firmware]
profile = "maixpy-v0.6.2-full"
'''


class SilentServer:
    """Accepts TCP connections and never says a word (a board that is powered but dead)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.setblocking(False)
            self._conns.append(conn)
            for c in list(self._conns):
                try:
                    c.recv(65536)        # swallow what the host sends
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for c in self._conns:
            c.close()
        self.sock.close()


def run(base: Path, rig: str, suite: str, *extra: str, env: dict | None = None,
        timeout: float = 300) -> tuple[subprocess.CompletedProcess, Path, dict[str, dict]]:
    (base / "suites").mkdir(parents=True, exist_ok=True)
    (base / "suites" / "test_health.py").write_text(suite)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--rig", rig,
                           "--rig-dir", str(base / "rigs"), "--hil-results", str(base / "results"), *extra,
                           "suites"], cwd=base, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    runs = [p for p in (base / "results").iterdir() if p.is_dir() and p.name not in ("sim-state", "flash-stamps")]
    assert len(runs) == 1, done.stdout[-3000:] + done.stderr[-2000:]
    tests = {r["nodeid"].split("::")[-1]: r for r in read_records(runs[0]) if r["type"] == "test"}
    return done, runs[0], tests


def test_dead_board_is_taken_out_of_service_and_secrets_stay_out(tmp_path):
    server = SilentServer()
    try:
        (tmp_path / "rigs").mkdir()
        (tmp_path / "rigs" / "dead.toml").write_text(
            DEAD_RIG.format(password=PASSWORD, port=server.port, token=TOKEN))
        done, run_dir, tests = run(tmp_path, "dead", DEAD_SUITE, env={"K210_API_TOKEN": TOKEN})
    finally:
        server.close()
    assert done.returncode == 1, done.stdout[-3000:]
    assert sorted(tests) == ["test_1", "test_2", "test_3", "test_4", "test_5", "test_6", "test_no_board_needed"]
    assert [tests[n]["outcome"] for n in ("test_1", "test_2", "test_3")] == ["broken"] * 3
    reason = tests["test_4"]["message"]
    assert reason.startswith("rig dead taken out of service after 3 consecutive infrastructure errors: "
                             "BootTimeout: rig dead: ")
    for name in ("test_4", "test_5", "test_6"):
        assert tests[name]["outcome"] == "skipped" and tests[name]["message"] == reason
    assert tests["test_no_board_needed"]["outcome"] == "passed"
    assert "hil: rig dead taken out of service after 3" in done.stdout
    header = read_records(run_dir)[0]
    assert header["port"] == f"socket://hil:***@127.0.0.1:{server.port}"
    # no secret anywhere: record, serial logs, terminal
    everything = done.stdout + done.stderr
    for path in run_dir.rglob("*"):
        if path.is_file():
            everything += path.read_text(errors="replace")
    assert PASSWORD not in everything and TOKEN not in everything
    assert "power command on: true ***" in (run_dir / "logs" / "session.log").read_text()


HANG_SUITE = '''
import pytest
from k210sim.control import ControlClient

def test_1(repl):
    assert repl.eval("1 + 1") == 2

def test_2_board_dies(board, repl):
    ControlClient(board.sim.endpoints["control"]).fault("hang", until="clear")
    repl.exec("print(2)", timeout=2.0)

def test_3(repl):
    repl.exec("print(3)")

def test_4(repl):
    repl.exec("print(4)")

def test_5(device):
    device.memory()
'''


@pytest.mark.slow
def test_board_dying_mid_run_is_taken_out_of_service(tmp_path):
    from test_faults_e2e import make_rig
    make_rig(tmp_path / "rigs", "dying")
    done, _, tests = run(tmp_path, "dying", HANG_SUITE, "--hil-max-broken", "2")
    outcomes = {n: r["outcome"] for n, r in tests.items()}
    assert outcomes == {"test_1": "passed", "test_2_board_dies": "broken", "test_3": "broken",
                        "test_4": "skipped", "test_5": "skipped"}, done.stdout[-3000:]
    assert tests["test_4"]["message"].startswith("rig dying taken out of service after 2 consecutive "
                                                 "infrastructure errors: BootTimeout: rig dying: board did not recover")
