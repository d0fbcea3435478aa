"""The simulated board as a child process: ``python -m k210sim serve`` for one sim rig.

The simulator is a program of its own (package k210sim); the framework never imports it and
reaches it only as a device (its serial port) and a power switch (its control socket, spoken by
hil.simcontrol). ``SimProcess`` starts one with a bounded wait for its JSON endpoints line, stops
it by its pid (SIGTERM, then SIGKILL), and ties it to its parent's life on Linux so a killed
pytest takes its simulator along. ``run_k210sim`` runs any ``python -m k210sim`` command in the
foreground for the ``hil sim`` launchers.
"""
from __future__ import annotations

import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from hil.errors import SimError

SIM_START_TIMEOUT_S = 30.0
SIM_STOP_TIMEOUT_S = 5.0


def _die_with_parent() -> None:   # pragma: no cover - runs in the child between fork and exec
    """Linux: the simulator gets SIGTERM if the test process dies (even by SIGKILL)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the plugin's own cleanup still stops it
        pass


def _simulator_installed() -> None:
    if importlib.util.find_spec("k210sim") is None:
        raise SimError("the simulated board is not installed: pip install 'k210-hil[sim]' "
                       "(it provides `python -m k210sim`)")


def run_k210sim(argv: list[str]) -> int:
    """``python -m k210sim ARGV`` in the foreground: stdio inherited, SIGTERM/SIGINT passed on,
    its exit status returned."""
    _simulator_installed()
    proc = subprocess.Popen([sys.executable, "-m", "k210sim", *argv],
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def forward(signum, frame) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class SimProcess:
    """``python -m k210sim serve`` for one rig; endpoints from its JSON line; stop by pid."""

    def __init__(self, state_dir: Path, board: str, build: str, pace: str = "line",
                 log_path: Path | None = None, start_timeout: float = SIM_START_TIMEOUT_S) -> None:
        self.state_dir = Path(state_dir)
        self.board = board
        self.build = build
        self.pace = pace
        self.log_path = Path(log_path) if log_path else self.state_dir.parent / f"{self.state_dir.name}.serve.log"
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.endpoints: dict = {}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "k210sim", "serve", "--state", str(self.state_dir),
                "--board", self.board, "--build", self.build, "--pace", self.pace]

    def start(self) -> dict:
        _simulator_installed()
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        err = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        finally:
            err.close()
        line = self._read_line()
        try:
            self.endpoints = json.loads(line)
        except ValueError:
            self.stop()
            raise SimError(f"simulator for {self.state_dir} printed {line[:200]!r}, not its JSON "
                           f"endpoints line (see {self.log_path})") from None
        return self.endpoints

    def _read_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        fd = self.proc.stdout.fileno()
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise SimError(f"simulator did not print its endpoints within {self.start_timeout:g} s "
                               f"(state {self.state_dir}; see {self.log_path})")
            ready, _, _ = select.select([fd], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.proc.wait(5)
                    raise SimError(f"simulator exited with status {code} before it was ready: "
                                   f"{self._stderr_tail() or '(no output)'} (state {self.state_dir})")
                buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8", "replace")

    def _stderr_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1].strip()[:300] if lines else ""

    def stop(self, timeout: float = SIM_STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; by pid, never by name."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
            except ProcessLookupError:
                pass
        if proc.stdout is not None:
            proc.stdout.close()
