"""Model upload to /sd over the REPL: our put (hil.device.micropython.transfer) against the line rate and against
``mpremote fs cp``, on one simulated board in its own process with line pacing on.

The payload is a real generated kmodel (hil.kmodel.build.build_v3: headers plus xorshift
weights, as incompressible as quantised weights are), the same bytes for both tools.

Ours: ``Device.put`` timed end to end (start of the receiver, streaming, sha256 on the board
and of the stored file, rename; with the fast-baud switch also both baud changes). Run once at
the rig's 115200 and once with the switch to ``fast_baud`` (the bench switches for every size
it measures; the library's own threshold is 64 KiB).

mpremote (1.29, a subprocess, ``mpremote connect /dev/pts/N fs cp FILE :/sd/NAME``) at 115200:
it has no fast-baud mode, so the fast-baud comparison is ours at fast baud against mpremote at
115200. Its stdout is read unbuffered: the "cp FILE :/sd/NAME" line is printed once it is
connected and in the raw REPL, so start -> that line is its connect overhead and that line ->
exit is the copy (timed apart; the ratio uses the copy only, which flatters mpremote). The
connect overhead is also timed on its own (``mpremote connect PORT exec pass``). The bytes it
writes to the port are counted by a two-line wrapper around pyserial's write (mpremote itself
unchanged), which is how the notes can say where its time goes. Every copy is checked
byte for byte against the card's backing file.

Sizes mpremote is not run at (by default 2 MiB: about 9 minutes at 115200) are extrapolated
from a least-squares line through the sizes it was run at; such rows say so.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (KiB, MiB, BenchSim, Row, Scaling, Section, Timer, at_least, attached_board,
                          line_rate, median, say, size_label)

TARGET_LINE = 0.90          # ours at 115200, fraction of the line rate
TARGET_VS_MPREMOTE = 3.0    # ours / mpremote at the same baud
TARGET_FAST_VS_MPREMOTE = 10.0

# mpremote unchanged, its port writes counted: the count goes to stderr when it exits.
_COUNTING_MPREMOTE = r"""
import atexit, sys
import serial.serialposix as sp
count = [0]
write = sp.Serial.write
def counted(self, data):
    count[0] += len(data)
    return write(self, data)
sp.Serial.write = counted
atexit.register(lambda: sys.stderr.write("bench-wire-bytes %d\n" % count[0]))
sys.argv = ["mpremote"] + sys.argv[1:]
from mpremote.main import main
sys.exit(main())
"""


@dataclass(frozen=True)
class UploadConfig:
    sizes: tuple[int, ...] = (64 * KiB, 512 * KiB, 2 * MiB)
    mpremote_sizes: tuple[int, ...] = (64 * KiB, 512 * KiB)
    baud: int = 115200
    fast_baud: int = 1_500_000
    connect_runs: int = 3
    board: str = "maix-bit"
    firmware: str = "maixpy-v0.6.2-full"


SMOKE = UploadConfig(sizes=(4 * KiB, 16 * KiB), mpremote_sizes=(4 * KiB, 16 * KiB), connect_runs=1)


@dataclass
class OursRun:
    size: int
    baud: int           # the baud the transfer ran at
    seconds: float

    @property
    def rate(self) -> float:
        return self.size / self.seconds


@dataclass
class MpremoteRun:
    size: int
    total_s: float      # the whole process
    connect_s: float    # start -> "cp" line (Python start-up, imports, open, raw REPL)
    copy_s: float       # "cp" line -> exit
    wire_bytes: int     # bytes mpremote wrote to the port
    ok: bool
    output: str = ""

    @property
    def rate(self) -> float:
        return self.size / self.copy_s if self.copy_s > 0 else 0.0


@dataclass
class UploadResults:
    ours_slow: dict[int, OursRun] = field(default_factory=dict)
    ours_fast: dict[int, OursRun] = field(default_factory=dict)
    mpremote: dict[int, MpremoteRun] = field(default_factory=dict)
    mp_connect: list[float] = field(default_factory=list)
    mp_connect_wire: int = 0
    our_attach: float = 0.0


def model_bytes(size: int, seed: int) -> bytes:
    from hil.kmodel.build import build_v3
    return build_v3(size, seed=seed)


# -- ours --------------------------------------------------------------------------------------------
def run_ours(sim: BenchSim, work: Path, cfg: UploadConfig, res: UploadResults, payloads: dict[int, bytes]) -> None:
    with Timer() as t:
        ctx = attached_board(sim, work, fast_baud=cfg.fast_baud, log_name="upload-ours.log")
        board = ctx.__enter__()
    res.our_attach = t.s
    try:
        device = board.device
        transfer = device.transfer
        transfer.probe()          # once per connection, as any session does before its first put
        for size in cfg.sizes:
            for fast, into in ((0, res.ours_slow), (cfg.fast_baud, res.ours_fast)):
                transfer.fast_baud = fast
                transfer.fast_threshold = 0
                remote = f"/sd/bench_{size_label(size)}.kmodel"
                say(f"upload: ours, {size_label(size)} at {fast or cfg.baud} baud")
                with Timer() as t:
                    device.put(payloads[size], remote)
                into[size] = OursRun(size, transfer.last_baud, t.s)
                device.remove(remote)
    finally:
        ctx.__exit__(None, None, None)


# -- mpremote ----------------------------------------------------------------------------------------
def _mpremote(argv: list[str], timeout: float, marker: bytes | None) -> tuple[float, float | None, int, int, str]:
    """Run mpremote (counting wrapper); returns (total s, seconds to marker, exit code, wire bytes, output)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _COUNTING_MPREMOTE, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    out = b""
    t_mark = None
    deadline = t0 + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"mpremote {' '.join(argv[2:])} did not finish within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
            if marker is not None and t_mark is None and marker in out:
                t_mark = time.monotonic() - t0
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    total = time.monotonic() - t0
    wire = 0
    for line in out.splitlines():
        if line.startswith(b"bench-wire-bytes "):
            wire = int(line.split()[1])
    text = out.decode("utf-8", "replace")
    return total, t_mark, rc, wire, text


def run_mpremote(sim: BenchSim, work: Path, cfg: UploadConfig, res: UploadResults, payloads: dict[int, bytes]) -> None:
    port = sim.endpoints.get("pty_device") or sim.pty     # /dev/pts/N: mpremote's own pty mode
    for _ in range(cfg.connect_runs):
        total, _, rc, wire, text = _mpremote(["connect", port, "exec", "pass"], 60.0, None)
        if rc != 0:
            raise RuntimeError(f"mpremote connect {port} exec pass failed ({rc}): {text.strip()[-200:]}")
        res.mp_connect.append(total)
        res.mp_connect_wire = wire
    for size in cfg.mpremote_sizes:
        name = f"mp_{size_label(size)}.kmodel"
        local = work / name
        local.write_bytes(payloads[size])
        target = sim.sd_file(name)
        if target.exists():
            target.unlink()
        say(f"upload: mpremote fs cp, {size_label(size)} at {cfg.baud} baud")
        wire_time = size * 4 * 10 / cfg.baud        # repr() makes at most 4 bytes of a byte
        marker = f"cp {local}".encode()
        total, t_cp, rc, wire, text = _mpremote(["connect", port, "fs", "cp", str(local), f":/sd/{name}"],
                                                60.0 + 3 * wire_time, marker)
        ok = rc == 0 and target.is_file() and target.read_bytes() == payloads[size]
        connect = t_cp if t_cp is not None else 0.0
        res.mpremote[size] = MpremoteRun(size, total, connect, total - connect, wire, ok, text.strip()[-300:])
        local.unlink()


# -- rows --------------------------------------------------------------------------------------------
def _mp_fit(res: UploadResults) -> Scaling:
    return Scaling("mpremote fs cp @115200 (copy only)",
                   tuple(sorted((s, r.copy_s) for s, r in res.mpremote.items() if r.ok)))


def _mp_reference(res: UploadResults, size: int) -> tuple[float | None, str, dict]:
    """mpremote's copy rate at ``size``: measured, or extrapolated from the sizes it ran at."""
    run = res.mpremote.get(size)
    if run is not None and run.ok:
        return run.rate, "mpremote fs cp", {"mpremote_copy_s": run.copy_s, "mpremote_total_s": run.total_s,
                                            "mpremote_connect_s": run.connect_s,
                                            "mpremote_wire_bytes": run.wire_bytes, "measured": True}
    scaling = _mp_fit(res)
    fit = scaling.fit()
    if fit is not None:
        fixed, rate = fit
        seconds = fixed + size / rate
    elif scaling.points:
        s0, t0 = scaling.points[0]
        seconds = t0 * size / s0
    else:
        return None, "mpremote fs cp (no run succeeded)", {"measured": False}
    return size / seconds, "mpremote fs cp, extrapolated", {"mpremote_copy_s": seconds, "measured": False,
                                                            "from_sizes": [s for s, _ in scaling.points]}


def _mp_wire_note(res: UploadResults, baud: int) -> str:
    runs = [r for r in res.mpremote.values() if r.ok and r.wire_bytes]
    if not runs:
        return ""
    big = max(runs, key=lambda r: r.size)
    per = big.wire_bytes / big.size
    wire_s = big.wire_bytes * 10 / baud
    frac = big.rate / line_rate(baud)
    return (f"mpremote (raw REPL, no raw-paste on MaixPy) sends repr() of 256-byte chunks, one exec each: "
            f"{per:.2f} wire bytes per payload byte measured ({big.wire_bytes} for {size_label(big.size)}); "
            f"their wire time {wire_s:.1f} s of its {big.copy_s:.1f} s copy, the rest per-exec turnaround "
            f"and 10 ms sleeps; it reaches {frac:.3f} of the line rate")


def _fixed_cost_note(fit: tuple[float, float] | None, run: OursRun, line: float) -> str:
    """Why a small put falls short of the line rate, from the fit over the sizes measured."""
    if fit is None:
        return (f"a put has a fixed cost (receiver start, two sha256 round trips, rename) on top of "
                f"{run.size * 10 / run.baud:.2f} s of wire time; measure two sizes to split it")
    fixed, rate = fit
    return (f"fixed cost {fixed:.2f} s a put (receiver start, two sha256 round trips, rename) is "
            f"{fixed / run.seconds * 100:.0f}% of {run.seconds:.2f} s at {size_label(run.size)}; "
            f"the marginal rate is {rate / line:.3f} of the line rate")


def _extrapolated(det: dict, label: str) -> str:
    if det.get("measured", True):
        return ""
    return (f"mpremote not run at {label} (its copy would take about {det['mpremote_copy_s'] / 60:.0f} min): "
            f"extrapolated from its runs at {', '.join(size_label(s) for s in det.get('from_sizes', []))}")


def rows_from(res: UploadResults, cfg: UploadConfig) -> Section:
    sec = Section()
    slow_line = line_rate(cfg.baud)
    fast_line = line_rate(cfg.fast_baud)
    wire_note = _mp_wire_note(res, cfg.baud)
    slow_fit = Scaling("", tuple(sorted((s, r.seconds) for s, r in res.ours_slow.items()))).fit()
    fast_fit = Scaling("", tuple(sorted((s, r.seconds) for s, r in res.ours_fast.items()))).fit()
    for size in cfg.sizes:
        label = size_label(size)
        ours = res.ours_slow.get(size)
        if ours is not None:
            ratio = ours.rate / slow_line
            note = ""
            if ours.baud != cfg.baud:
                note = f"ran at {ours.baud} baud"
            elif ratio < TARGET_LINE:
                note = _fixed_cost_note(slow_fit, ours, slow_line)
            sec.rows.append(Row("upload", f"upload.{cfg.baud}.{label}.line_fraction", ours.rate, "B/s",
                                slow_line, f"line rate @{cfg.baud}", ratio, at_least(TARGET_LINE), note,
                                details={"seconds": ours.seconds, "bytes": size}))
            ref, ref_label, det = _mp_reference(res, size)
            ratio = ours.rate / ref if ref else None
            notes = [_extrapolated(det, label)]
            if ref is not None and ratio is not None and ratio < TARGET_VS_MPREMOTE:
                need = TARGET_VS_MPREMOTE * ref / slow_line
                why = ("above the physical limit (1.0) of any client at this baud" if need > 1 else
                       f"ours reaches {ours.rate / slow_line:.3f}: " + _fixed_cost_note(slow_fit, ours, slow_line))
                notes += [f"{TARGET_VS_MPREMOTE:g}x mpremote would need {need:.3f} of the line rate, {why}", wire_note]
            note = "; ".join(n for n in notes if n)
            sec.rows.append(Row("upload", f"upload.{cfg.baud}.{label}.vs_mpremote", ours.rate, "B/s", ref,
                                ref_label + f" @{cfg.baud}", ratio, at_least(TARGET_VS_MPREMOTE), note,
                                details={"seconds": ours.seconds, **det}))
        fast = res.ours_fast.get(size)
        if fast is not None:
            ratio = fast.rate / fast_line
            if fast.baud != cfg.fast_baud:
                note = f"switch refused: ran at {fast.baud} baud"
            else:
                note = f"{fast.seconds:.2f} s for {label}, both baud switches included"
                if fast_fit is not None:
                    note += (f"; fit over sizes: {fast_fit[0]:.2f} s fixed a put (the switches, receiver start, "
                             f"hashes) + {fast_fit[1] / fast_line:.3f} of the line rate")
            sec.rows.append(Row("upload", f"upload.fast{cfg.fast_baud}.{label}.line_fraction", fast.rate, "B/s",
                                fast_line, f"line rate @{cfg.fast_baud}", ratio, None, note,
                                details={"seconds": fast.seconds, "bytes": size, "baud": fast.baud}))
            ref, ref_label, det = _mp_reference(res, size)
            ratio = fast.rate / ref if ref else None
            notes = [_extrapolated(det, label)]
            if ratio is not None and ratio < TARGET_FAST_VS_MPREMOTE:
                notes.append(f"the fixed cost of a put with the switch ({fast_fit[0]:.2f} s by the fit) dominates "
                             f"at {label}: {fast.seconds:.2f} s against {size * 10 / cfg.fast_baud:.2f} s of wire time"
                             if fast_fit else
                             f"at {label} the switch's fixed cost dominates: {fast.seconds:.2f} s against "
                             f"{size * 10 / cfg.fast_baud:.2f} s of wire time")
            note = "; ".join(n for n in notes if n)
            sec.rows.append(Row("upload", f"upload.fast{cfg.fast_baud}.{label}.vs_mpremote", fast.rate, "B/s", ref,
                                ref_label + f" @{cfg.baud} (no fast mode)", ratio, at_least(TARGET_FAST_VS_MPREMOTE),
                                note, details={"seconds": fast.seconds, **det}))
    for size, run in sorted(res.mpremote.items()):
        if not run.ok:
            sec.rows.append(Row("upload", f"upload.mpremote.{size_label(size)}", None, "s", status="error",
                                note=f"mpremote fs cp failed or the copy differs: {run.output[-160:]}"))
    if res.mp_connect:
        mp = median(res.mp_connect)
        cp_connects = [r.connect_s for r in res.mpremote.values() if r.ok and r.connect_s]
        sec.rows.append(Row(
            "upload", "upload.connect_overhead", res.our_attach, "s", mp, "mpremote connect+exec pass",
            mp / res.our_attach if res.our_attach else None, None,
            f"ours: open the port and a soft reset (Board.start); mpremote: process start, connect, raw REPL"
            + (f"; inside its fs cp runs start->copy took {median(cp_connects):.2f} s" if cp_connects else ""),
            details={"mpremote_runs_s": res.mp_connect, "mpremote_connect_wire_bytes": res.mp_connect_wire,
                     "mpremote_cp_connect_s": cp_connects}))
    sec.scaling.append(Scaling(f"ours put @{cfg.baud}", tuple(sorted((s, r.seconds) for s, r in res.ours_slow.items()))))
    sec.scaling.append(Scaling(f"ours put @{cfg.fast_baud} (switch)",
                               tuple(sorted((s, r.seconds) for s, r in res.ours_fast.items()))))
    sec.scaling.append(_mp_fit(res))
    for size, run in sorted(res.mpremote.items()):
        sec.log.append(f"mpremote {size_label(size)}: total {run.total_s:.2f} s = connect {run.connect_s:.2f} s "
                       f"+ copy {run.copy_s:.2f} s; {run.wire_bytes} bytes written; verified {run.ok}")
    return sec


def run(work: Path, cfg: UploadConfig = UploadConfig(), mpremote: bool = True) -> Section:
    payloads = {size: model_bytes(size, seed=i) for i, size in enumerate(sorted(set(cfg.sizes) | set(cfg.mpremote_sizes)))}
    res = UploadResults()
    work.mkdir(parents=True, exist_ok=True)
    with Timer() as total, BenchSim(work / "upload-state", cfg.board, cfg.firmware) as sim:
        run_ours(sim, work, cfg, res, payloads)
        if mpremote:
            run_mpremote(sim, work, cfg, res, payloads)
    sec = rows_from(res, cfg)
    sec.seconds = total.s
    return sec
