"""The real mpremote against the MaixPy emulation, through a pty bridged to the fake UART.

mpremote probes raw-paste (``\\x05A\\x01``), gets the old raw REPL's banner back and falls back
to the plain raw REPL, exactly as it would with a real MaixPy board.
"""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
import tty
from pathlib import Path

import pytest

from k210sim.maixpy.firmware import DEFAULT_MAIN_PY
from maixpy_fakes import Board

pytest.importorskip("mpremote")


class PtyBridge:
    """A pty whose far end is the board's UART: what a USB-serial adapter would be."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._to_board, daemon=True),
                         threading.Thread(target=self._to_host, daemon=True)]
        for t in self._threads:
            t.start()

    def _to_board(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                self.board.uart.feed(data)

    def _to_host(self) -> None:
        while not self._stop.is_set():
            data = self.board.uart.take(0.05)
            if data:
                os.write(self.master, data)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def bridge(tmp_path: Path):
    b = Board(tmp_path / "b").start()
    br = PtyBridge(b)
    yield br
    br.close()
    b.stop()


def mpremote(bridge: PtyBridge, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", bridge.path, *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_mpremote_exec_eval_and_files(bridge, tmp_path):
    assert mpremote(bridge, "exec", "print(1 + 1)") == "2\n"
    assert mpremote(bridge, "eval", "[1, 'a']") == "[1, 'a']\n"
    local = tmp_path / "local.bin"
    local.write_bytes(bytes(range(256)) * 40)
    mpremote(bridge, "fs", "cp", str(local), ":/sd/remote.bin")
    assert (bridge.board.storage.sd_dir / "remote.bin").read_bytes() == local.read_bytes()
    assert "10240 remote.bin" in mpremote(bridge, "fs", "ls", ":/sd")
    back = tmp_path / "back.bin"
    mpremote(bridge, "fs", "cp", ":/sd/remote.bin", str(back))
    assert back.read_bytes() == local.read_bytes()
    mpremote(bridge, "fs", "mkdir", ":/flash/d")
    assert "d/" in mpremote(bridge, "fs", "ls", ":/flash")
    mpremote(bridge, "fs", "rm", ":/sd/remote.bin")
    assert mpremote(bridge, "fs", "ls", ":/sd").strip().splitlines()[1:] == \
        [f"{len(DEFAULT_MAIN_PY):12d} main.py"]       # _boot.py's default main.py stays


def test_mpremote_soft_reset_and_errors(bridge):
    assert mpremote(bridge, "soft-reset", "exec", "print('after')") == "after\n"
    proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", bridge.path,
                           "exec", "import socket"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "ImportError: no module named 'socket'" in proc.stdout + proc.stderr
