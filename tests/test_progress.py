"""Progress where people wait: bytes, rate and time left redrawn on a terminal, one final line in
logs and CI (no ``\\r``), in `hil flash` and inside pytest (a line per transfer over a few seconds,
a line per memory probe; nothing with -q)."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from hil.progress import LabelledMeters, Meter, final_line, live_line

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_line_redrawn_with_bytes_rate_and_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    meter = Meter("firmware", 1_000_000, out, tty=True, clock=clock)
    for done in range(0, 1_000_001, 100_000):
        clock.now += 1.0 if done else 0.0
        meter.update(done)
    meter.finish()
    text = out.getvalue()
    frames = text.split("\r")[1:]
    assert len(frames) == 11 and text.endswith("\n") and text.count("\n") == 1
    assert frames[5].startswith("firmware:  50% 488.3 KiB of 976.6 KiB, 97.7 KiB/s, 5 s left")
    assert frames[-1].startswith("firmware: 100% 976.6 KiB in 10.0 s, 97.7 KiB/s")


def test_elsewhere_only_one_final_line() -> None:
    out, clock = io.StringIO(), Clock()
    meter = Meter("m.kmodel", 40960, out, tty=False, clock=clock)
    for done in range(0, 40961, 4096):
        clock.now += 0.5 if done else 0.0
        meter.update(done)
    meter.finish()
    meter.finish()                       # once only
    assert out.getvalue() == "m.kmodel: 100% 40 KiB in 5.0 s, 8 KiB/s\n"


def test_a_transfer_that_stops_says_where() -> None:
    out, clock = io.StringIO(), Clock()
    meter = Meter("put /sd/x", 2 * 1024 * 1024, out, tty=False, clock=clock)
    meter.update(0)
    clock.now += 90
    meter.update(1024 * 1024)
    assert meter.finish() == "put /sd/x: stopped at 50% (1 MiB of 2 MiB) after 90.0 s"


def test_phases_of_an_isp_session_get_a_line_each() -> None:
    out, clock = io.StringIO(), Clock()
    meters = LabelledMeters(out, tty=False, clock=clock)
    for label, total in (("stub", 16384), ("firmware", 65536)):
        for done in range(4096, total + 1, 4096):
            clock.now += 0.1
            meters(label, done, total)
    meters.close()
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["stub", "firmware"]
    assert lines[1] == "firmware: 100% 64 KiB in 1.5 s, 40 KiB/s"


def test_formatting_edges() -> None:
    assert live_line("x", 0, 10, 0.0) == "x:   0% 0 bytes of 10 bytes, -/s, ? left"
    assert live_line("x", 1024, 1024 * 1024 * 300, 1.0).endswith("min left")
    assert final_line("x", 5, 5, 0.0) == "x: 100% 5 bytes in 0.0 s, -/s"


# -- inside pytest, on the simulated board -----------------------------------------------------------
SUITE = '''
import os
from hil.device.memory import SdProbe

def test_big_upload(device):
    device.put(os.urandom(40000), "/sd/progress.bin")      # ~3.5 s at 115200 baud

def test_small_upload(device):
    device.put(b"x" * 100, "/sd/small.bin")

def test_probe(device, files):
    probe = SdProbe(device, files, judge=lambda source, what: True, path="/sd/probe.kmodel",
                    free0=device.memory().sys_heap_free)
    assert probe(64 * 1024)
'''


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("k210sim.server")
    base = tmp_path_factory.mktemp("progress")
    (base / "suites").mkdir()
    (base / "suites" / "test_progress_suite.py").write_text(SUITE)
    return base


def pytest_argv(base: Path, name: str, *extra: str) -> list[str]:
    return ["-m", "pytest", "suites", f"--rig={ROOT / 'rigs' / 'sim.toml'}", f"--hil-results={base / name}",
            "-p", "no:cacheprovider", *extra]


@pytest.mark.slow
def test_pytest_on_a_terminal_redraws_the_transfer_line(suite: Path) -> None:
    child = pexpect.spawn(sys.executable, pytest_argv(suite, "tty"), cwd=str(suite), encoding="utf-8",
                          timeout=180, dimensions=(40, 160), env={**os.environ, "TERM": "xterm"})
    child.expect(pexpect.EOF)
    child.close()
    out = child.before
    assert child.exitstatus == 0, out[-3000:]
    redraws = re.findall(r"\r    hil: put /sd/progress.bin: +\d+% [^\r\n]*? left", out)
    assert redraws, out[-3000:]
    assert re.search(r"\r    hil: put /sd/progress.bin: 100% 39.1 KiB in \d+\.\d s, [\d.]+ KiB/s", out), out
    assert "small.bin" not in out                                   # under a second: no line
    assert re.search(r"    hil: memory probe: a \d+-byte model from SD loads \(\d+\.\d s\)\r?\n", out), out


@pytest.mark.slow
def test_pytest_in_a_log_writes_one_final_line_and_nothing_with_q(suite: Path) -> None:
    done = subprocess.run([sys.executable, *pytest_argv(suite, "pipe")], cwd=suite, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = done.stdout
    assert "\r" not in out
    lines = [line for line in out.splitlines() if line.startswith("    hil: ")]
    assert len(lines) == 2, out
    assert re.fullmatch(r"    hil: put /sd/progress.bin: 100% 39.1 KiB in \d+\.\d s, [\d.]+ KiB/s", lines[0])
    assert lines[1].startswith("    hil: memory probe: a ")
    # pytest's own progress goes on after our lines, on a line of its own
    after = out.splitlines()[out.splitlines().index(lines[1]) + 1]
    assert re.match(r"suites/test_progress_suite\.py \.", after), out
    quiet = subprocess.run([sys.executable, *pytest_argv(suite, "quiet", "-q")], cwd=suite, capture_output=True,
                           text=True, timeout=180)
    assert quiet.returncode == 0 and "hil: put" not in quiet.stdout and "memory probe" not in quiet.stdout, \
        quiet.stdout
