"""ISP flash write throughput: our client against the line rate and against kflash 1.1.6.

Both tools write the same random data raw at 0x300000 (kflash through a .kfpkg, since it has no
raw-address option) on the same simulated board (pace on: every byte takes its wire time), at
the same baud, one after the other in one run. The flash content is checked after every run.

Measured per run:
- write: the write phase only (ours: IspFlasher.stats.write_s; kflash: from its
  "Writing ... into" line to its "Rebooting..." line, read unbuffered as they are printed).
- total: the whole session, from the reset into ISP to the reboot (kflash: the whole process,
  so its Python start-up is in it).
Ratios: our write rate / line rate (baud/10 bytes a second); our write rate / kflash's; kflash's
total time / ours. Targets: >= 0.90 of the line rate and >= 1.0x kflash.

On goE boards (maix-go, maixduino) at >= 1.5 Mbaud kflash also switches the ROM's baud (0xC6) and
puts its port back to 115200 the instant it has written the boot frame, which on the
simulator's pty loses that frame about half the time; there kflash runs with -S and our client
with rom_baud_change=False, so both upload the stub at 115200 and the comparison stays fair.

    .venv/bin/python bench/bench_isp.py                       # 115200 and 1500000, ~1-2 min
    .venv/bin/python bench/bench_isp.py --runs 115200:64K      # sizes are options: BAUD:SIZE
    .venv/bin/python bench/bench_isp.py --runs 1500000:4M --board maix-go
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hil.boards import get_board
from hil.isp.flasher import IspFlasher
from hil.isp.image import KfpkgEntry, write_kfpkg
from k210sim.control import ControlClient
from k210sim.wrap import wrap_env

ADDR = 0x300000
DEFAULT_RUNS = "115200:96K,1500000:1M"
KFLASH_BOARD = {"maix-bit": "bit", "maix-dock": "dan", "maix-go": "goE", "maixduino": "goE", "kd233": "kd233"}


class Sim:
    """`python -m k210sim serve` in its own process, so the simulator's threads never share a GIL with the
    client under test (kflash runs in its own process too)."""

    def __init__(self, state: Path, board: str) -> None:
        self.state = state
        self.proc = subprocess.Popen([sys.executable, "-m", "k210sim", "serve", "--state", str(state),
                                      "--board", board, "--pace", "line", "--rfc2217", "none"],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise SystemExit("bench: the simulator did not start")
        self.endpoints = json.loads(line)
        self.control = ControlClient(self.endpoints["control"])

    def flash(self, addr: int, n: int) -> bytes:
        with open(self.state / "flash.img", "rb") as f:
            f.seek(addr)
            return f.read(n)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Result:
    tool: str
    baud: int
    size: int
    write_s: float
    total_s: float
    ok: bool
    note: str = ""

    @property
    def write_rate(self) -> float:
        return self.size / self.write_s if self.write_s > 0 else 0.0


def parse_size(text: str) -> int:
    t = text.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def parse_runs(text: str) -> list[tuple[int, int]]:
    runs = []
    for part in text.split(","):
        baud, _, size = part.partition(":")
        runs.append((int(baud), parse_size(size or "256K")))
    return runs


def run_ours(sim: Sim, board: str, baud: int, data: bytes) -> Result:
    ctl = sim.control
    t0 = time.monotonic()
    with IspFlasher(sim.endpoints["pty"], get_board(board), 115200, baud if baud != 115200 else None,
                    enter_isp=lambda: ctl.reset(boot=True), rom_baud_change=False) as f:
        f.flash_data(ADDR, data)
        f.reboot()
        stats = f.stats
    total = time.monotonic() - t0
    ok = sim.flash(ADDR, len(data)) == data
    note = "; ".join(stats.notes)
    if stats.baud != baud:
        note = (note + "; " if note else "") + f"wrote at {stats.baud}"
    return Result("hil isp", baud, len(data), stats.write_s, total, ok, note)


def run_kflash(sim: Sim, board: str, baud: int, data: bytes, kflash: str, work: Path) -> Result:
    pkg = write_kfpkg(work / "bench.kfpkg", [KfpkgEntry(ADDR, "bench.bin", data, False)])
    env = wrap_env(sim.endpoints["state"])
    env["PYTHONUNBUFFERED"] = "1"
    argv = [kflash, "-p", sim.endpoints["pty"], "-B", KFLASH_BOARD[board], "-b", str(baud), "-n", "-S",
            str(pkg)]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = b""
    t_start = t_end = None
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        now = time.monotonic()
        out += chunk
        if t_start is None and b"Writing bench.bin" in out:
            t_start = now
        if t_end is None and b"Rebooting" in out:
            t_end = now
    rc = proc.wait(timeout=600)
    total = time.monotonic() - t0
    ok = rc == 0 and sim.flash(ADDR, len(data)) == data
    note = "" if rc == 0 else f"exit {rc}: {out.decode(errors='replace').strip().splitlines()[-1:]}"
    write_s = (t_end - t_start) if t_start and t_end else 0.0
    return Result("kflash 1.1.6", baud, len(data), write_s, total, ok, note)


def table(rows: list[Result]) -> str:
    head = (f"{'tool':<13} {'baud':>8} {'bytes':>9} {'write s':>8} {'KiB/s':>8} {'of line':>8} "
            f"{'total s':>8}  ok")
    lines = [head, "-" * len(head)]
    for r in rows:
        line_rate = r.baud / 10
        lines.append(f"{r.tool:<13} {r.baud:>8} {r.size:>9} {r.write_s:>8.2f} {r.write_rate / 1024:>8.1f} "
                     f"{r.write_rate / line_rate:>8.3f} {r.total_s:>8.2f}  {'yes' if r.ok else 'NO'}"
                     + (f"  ({r.note})" if r.note else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default=DEFAULT_RUNS,
                    help=f"comma-separated BAUD:SIZE runs (default {DEFAULT_RUNS})")
    ap.add_argument("--board", default="maix-bit", choices=sorted(KFLASH_BOARD))
    ap.add_argument("--no-kflash", action="store_true", help="measure our client only")
    args = ap.parse_args(argv)
    kflash = None if args.no_kflash else (shutil.which("kflash", path=str(Path(sys.executable).parent))
                                           or shutil.which("kflash"))
    rows: list[Result] = []
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-isp-") as tmp:
        work = Path(tmp)
        sim = Sim(work / "state", args.board)
        try:
            for baud, size in parse_runs(args.runs):
                data = os.urandom(size)
                ours = run_ours(sim, args.board, baud, data)
                rows.append(ours)
                line = f"{baud} baud, {size} bytes: ours {ours.write_rate / (baud / 10):.3f} of the line rate"
                if kflash:
                    theirs = run_kflash(sim, args.board, baud, os.urandom(size), kflash, work)
                    rows.append(theirs)
                    if theirs.write_rate > 0:
                        line += (f", {ours.write_rate / theirs.write_rate:.2f}x kflash's write rate, "
                                 f"{theirs.total_s / ours.total_s:.2f}x kflash's whole-run speed")
                summary.append(line)
        finally:
            sim.close()
    print(table(rows))
    print()
    for line in summary:
        print(line)
    print("targets: >= 0.90 of the line rate, >= 1.0x kflash")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
