"""What every benchmark shares: result rows with targets, the table (text, markdown, JSON),
timing helpers, the simulator in its own process, and a started Board on it.

A row is one figure: ours, a reference measured in the same run (the line rate, mpremote,
kflash, a linear sweep, one rig), their ratio, the target and the verdict. Ratios are always
"higher is better for us" (rate / rate, time(theirs) / time(ours), probes(theirs) / probes(ours)),
so a target reads "ratio >= 3". Targets on our own value ("ours <= 13 probes", "ours < 60 s")
say so. A figure short of its target carries a note saying why, from what was measured.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RIGS = REPO / "rigs"
KiB = 1024
MiB = 1024 * KiB
BITS_PER_BYTE = 10          # 8N1: start bit, 8 data bits, stop bit


def line_rate(baud: int) -> float:
    """The physical limit of a UART: payload bytes a second at ``baud``, 8N1."""
    return baud / BITS_PER_BYTE


def size_label(n: int) -> str:
    if n % MiB == 0:
        return f"{n // MiB}M"
    if n % KiB == 0:
        return f"{n // KiB}K"
    return str(n)


def parse_size(text: str) -> int:
    """"64K", "2M", "1.5M", "4096" -> bytes; a clear error naming the text otherwise."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": KiB, "M": MiB}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise ValueError(f"size {text!r}: expected a number of bytes, optionally with K or M (64K, 2M)") from None
    if value < 1:
        raise ValueError(f"size {text!r}: must be at least one byte")
    return int(value)


def parse_sizes(text: str) -> list[int]:
    return [parse_size(part) for part in text.split(",") if part.strip()]


# -- rows --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """``on`` "ratio" or "ours"; ``op`` one of >=, >, <=, <."""
    on: str
    op: str
    value: float

    def met(self, ours: float | None, ratio: float | None) -> bool | None:
        x = ratio if self.on == "ratio" else ours
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return None
        return {">=": x >= self.value, ">": x > self.value,
                "<=": x <= self.value, "<": x < self.value}[self.op]

    def __str__(self) -> str:
        value = f"{self.value:g}"
        return f"{self.on} {self.op} {value}" + ("x" if self.on == "ratio" and self.value >= 1 else "")


def at_least(value: float) -> Target:
    return Target("ratio", ">=", value)


@dataclass
class Row:
    group: str                        # upload, isp, threshold, suite, farm, overhead
    metric: str                       # stable key, e.g. "upload.115200.64K.line_fraction"
    ours: float | None
    unit: str = ""
    reference: float | None = None
    ref_label: str = ""               # what the reference is: "line rate", "mpremote fs cp", ...
    ratio: float | None = None
    target: Target | None = None
    note: str = ""
    status: str = ""                  # "" (measured), "n/a" (not available / not run), "error"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.status:
            return self.status
        if self.target is None:
            return "info"
        met = self.target.met(self.ours, self.ratio)
        if met is None:
            return "n/a"
        return "met" if met else "SHORT"

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "metric": self.metric, "ours": self.ours, "unit": self.unit,
                "reference": self.reference, "reference_label": self.ref_label, "ratio": self.ratio,
                "target": str(self.target) if self.target else None, "verdict": self.verdict,
                "note": self.note, "details": self.details}


def missing_row(group: str, metric: str, unit: str, why: str, target: Target | None = None,
                status: str = "n/a") -> Row:
    return Row(group, metric, None, unit, target=target, note=why, status=status)


@dataclass(frozen=True)
class Scaling:
    """How a time grows with size: time(size) and the factor per doubling of size."""
    series: str
    points: tuple[tuple[int, float], ...]      # (bytes, seconds), sorted by size

    def per_doubling(self) -> list[tuple[int, int, float]]:
        """(size a, size b, time factor for each doubling between a and b)."""
        out = []
        for (a, ta), (b, tb) in zip(self.points, self.points[1:]):
            if ta > 0 and tb > 0 and b > a:
                out.append((a, b, (tb / ta) ** (1 / math.log2(b / a))))
        return out

    def fit(self) -> tuple[float, float] | None:
        """Least squares time = fixed + size / rate: (fixed seconds, bytes a second)."""
        if len(self.points) < 2:
            return None
        xs = [float(s) for s, _ in self.points]
        ys = [t for _, t in self.points]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx == 0:
            return None
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        if slope <= 0:
            return None
        return my - slope * mx, 1 / slope

    def to_json(self) -> dict[str, Any]:
        fit = self.fit()
        return {"series": self.series, "points": [{"bytes": s, "seconds": t} for s, t in self.points],
                "per_doubling": [{"from": a, "to": b, "time_factor": f} for a, b, f in self.per_doubling()],
                "fixed_s": fit[0] if fit else None, "marginal_bytes_per_s": fit[1] if fit else None}

    def describe(self) -> str:
        steps = ", ".join(f"{size_label(a)}->{size_label(b)}: x{f:.2f}" for a, b, f in self.per_doubling())
        fit = self.fit()
        tail = f"; fit: {fit[0]:.2f} s fixed + {fit[1]:.0f} B/s" if fit else ""
        return f"{self.series}: time per doubling of size {steps or '-'}{tail}"


@dataclass
class Section:
    """What one benchmark module returns."""
    rows: list[Row] = field(default_factory=list)
    scaling: list[Scaling] = field(default_factory=list)
    log: list[str] = field(default_factory=list)    # lines worth keeping (tool outputs, settings)
    seconds: float = 0.0


# -- formatting --------------------------------------------------------------------------------------
def fmt_value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "B/s":
        return f"{value / KiB:.1f} KiB/s" if value < MiB else f"{value / MiB:.2f} MiB/s"
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.1f} s"
    if unit in ("probes", "count", "tests"):
        return f"{value:g} {unit}"
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip()


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else (f"{ratio:.3f}" if ratio < 1.5 else f"{ratio:.2f}x")


def table_cells(row: Row) -> list[str]:
    ref = fmt_value(row.reference, row.unit)
    if row.ref_label:
        ref = f"{ref} ({row.ref_label})" if row.reference is not None else row.ref_label
    return [row.metric, fmt_value(row.ours, row.unit), ref, fmt_ratio(row.ratio),
            str(row.target) if row.target else "-", row.verdict, row.note]


HEADERS = ["metric", "ours", "reference", "ratio", "target", "verdict", "note"]


def text_table(rows: list[Row], note_width: int = 70) -> str:
    cells = [table_cells(r) for r in rows]
    for c in cells:     # the note column wraps onto continuation lines
        c[-1] = c[-1] if len(c[-1]) <= note_width else c[-1][:note_width - 3] + "..."
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(HEADERS)]
    line = "  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)).rstrip()
    out = [line, "-" * len(line)]
    for c in cells:
        out.append("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[Row], scaling: list[Scaling], meta: dict[str, Any], log: list[str]) -> str:
    out = ["# k210-hil benchmarks", ""]
    out.append(f"Run {meta.get('started', '')} on {meta.get('host', '')}, "
               f"{meta.get('mode', 'full')} run, {meta.get('seconds', 0):.0f} s; "
               f"line pacing on (every byte takes its wire time at the current baud, 10 bits a byte).")
    if meta.get("load_at_start"):
        out.append(f"{meta.get('cpus')} cores, load average {meta['load_at_start'][0]:.2f} at the start"
                   + (f" and {meta['load_at_end'][0]:.2f} at the end" if meta.get("load_at_end") else "")
                   + f"; commit {meta.get('commit') or '?'}.")
    out += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows:
        out.append("| " + " | ".join(_md(c) for c in table_cells(r)) + " |")
    if scaling:
        out += ["", "## Scaling with size", "",
                "Time factor for each doubling of the size (1.00 = size-independent, 2.00 = linear), "
                "and a least-squares fit time = fixed + size / rate.", ""]
        out += [f"- {s.describe()}" for s in scaling]
    if log:
        out += ["", "## Details", "", "```"] + log + ["```"]
    return "\n".join(out) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Never leave a half-written file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(out_dir: Path, rows: list[Row], scaling: list[Scaling], meta: dict[str, Any],
                  log: list[str]) -> tuple[Path, Path]:
    doc = {"meta": meta, "rows": [r.to_json() for r in rows], "scaling": [s.to_json() for s in scaling],
           "log": log}
    jpath, mpath = out_dir / "bench.json", out_dir / "bench.md"
    write_atomic(jpath, json.dumps(doc, indent=2) + "\n")
    write_atomic(mpath, markdown(rows, scaling, meta, log))
    return jpath, mpath


# -- timing ------------------------------------------------------------------------------------------
class Timer:
    """``with Timer() as t: ...``; then ``t.s`` seconds (monotonic clock)."""

    def __enter__(self) -> "Timer":
        self.t0 = time.monotonic()
        self.s = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.monotonic() - self.t0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- the simulator in its own process ----------------------------------------------------------------
class BenchSim:
    """``python -m k210sim serve --pace line`` in its own process (its threads never share a GIL
    with the client being timed), stopped by its pid. Wraps hil.board.simprocess.SimProcess, which bounds
    the start-up wait and kills the child if this process dies."""

    def __init__(self, state: Path, board: str = "maix-bit", firmware: str = "maixpy-v0.6.2-full",
                 pace: str = "line") -> None:
        from hil.board.simprocess import SimProcess
        from k210sim.control import ControlClient
        self.state = Path(state)
        self.proc = SimProcess(self.state, board, firmware, pace, log_path=self.state.parent / f"{self.state.name}.log")
        self.endpoints = self.proc.start()
        self.control = ControlClient(self.endpoints["control"])

    @property
    def pty(self) -> str:
        return self.endpoints["pty"]

    def flash(self, addr: int, n: int) -> bytes:
        """Bytes of the simulated SPI flash (its image file in the state directory)."""
        with open(self.state / "flash.img", "rb") as f:
            f.seek(addr)
            return f.read(n)

    def sd_file(self, name: str) -> Path:
        """The host file behind /sd/<name> (k210sim.storage keeps the card in state/sd)."""
        return self.state / "sd" / name

    def close(self) -> None:
        self.proc.stop()

    def __enter__(self) -> "BenchSim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_sim_rig(name: str = "sim", fast_baud: int = 0, pace: str = "line"):
    from dataclasses import replace

    from hil.rig import load_rig
    rig = load_rig(name, RIGS)
    return replace(rig, serial=replace(rig.serial, fast_baud=fast_baud), sim=replace(rig.sim, pace=pace))


class attached_board:
    """``with attached_board(sim, work, fast_baud=...) as board``: a started hil.board.Board on
    a running BenchSim (REPL answering after a soft reset), closed afterwards (the sim stays)."""

    def __init__(self, sim: BenchSim, work: Path, fast_baud: int = 0, rig: str = "sim",
                 log_name: str = "board.log") -> None:
        self.sim, self.work, self.fast_baud, self.rig, self.log_name = sim, Path(work), fast_baud, rig, log_name
        self.board = None

    def __enter__(self):
        from hil.board import Board
        from hil.link import SerialLog
        rig = load_sim_rig(self.rig, self.fast_baud)
        board = Board(rig, results=self.work, log=SerialLog(self.work / self.log_name),
                      sim_endpoints=self.sim.endpoints)
        board.open()
        try:
            board.lifecycle.start()
        except BaseException:
            board.close()
            raise
        self.board = board
        return board

    def __exit__(self, *exc: object) -> None:
        if self.board is not None:
            self.board.close()


def say(text: str) -> None:
    import sys
    print(f"bench: {text}", file=sys.stderr, flush=True)
