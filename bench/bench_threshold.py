"""Memory threshold search: probes and wall time to 4 KiB resolution, bisection against a
linear sweep, on one simulated board (own process, line pacing on).

A probe is what the suites do (suites/test_memory_threshold.py): a v3 kmodel of the asked
size written on the board by the on-board writer (``Device.write_model_onboard``: no upload),
then ``kpu.load`` from /sd; it loads (and is freed) or fails with MemoryOverflow. Any other
load error stops the benchmark.

- Bisection (the suites' bracket): the whole free system heap must fail, half of it should load
  (halved until it does), then halve the gap to 4 KiB: about log2(free / 2 / 4 KiB) + 2 probes.
- Linear sweep (what one does by hand): 64 KiB, 128 KiB, ... until the first failure (that is
  64 KiB resolution), then 4 KiB steps up from the last size that loaded until one fails, so
  both searches end at the same resolution. Both must find the same edge.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.common import KiB, BenchSim, Row, Section, Target, Timer, attached_board, say
from hil.threshold import align_down as down, align_up as up, search_from_free_heap

PATH = "/sd/bench_probe.kmodel"
TARGET_PROBES = 13


@dataclass(frozen=True)
class ThresholdConfig:
    step: int = 4 * KiB
    sweep_step: int = 64 * KiB
    sweep_from: int | None = 64 * KiB     # None: start the sweep at 7/8 of the free heap (smoke)
    firmware: str = "maixpy-v0.6.2-full"
    board: str = "maix-bit"


SMOKE = ThresholdConfig(sweep_from=None)


@dataclass
class Search:
    name: str
    probes: list[tuple[int, bool]] = field(default_factory=list)
    seconds: float = 0.0
    ok: int = 0          # largest size that loaded
    fail: int = 0        # smallest size that failed

    @property
    def count(self) -> int:
        return len(self.probes)


class Prober:
    def __init__(self, device, search: Search) -> None:
        self.device = device
        self.search = search

    def __call__(self, size: int) -> bool:
        from hil.errors import MemoryOverflow
        from hil.kmodel.build import DEFAULT_MAIN_MEM
        self.device.write_model_onboard(PATH, size, DEFAULT_MAIN_MEM)
        try:
            handle = self.device.kpu_load(PATH)
        except MemoryOverflow:
            ok = False
        else:
            self.device.kpu_deinit(handle)
            ok = True
        self.search.probes.append((size, ok))
        return ok


def bisection(device, free: int, step: int) -> Search:
    """The memory-threshold suite's own search (hil.threshold), bracketed from the free heap."""
    s = Search("bisection")
    with Timer() as t:
        edge = search_from_free_heap(Prober(device, s), free, step)
    s.seconds, s.ok, s.fail = t.s, edge.ok, edge.fail
    return s


def linear_sweep(device, start: int, coarse: int, step: int, ceiling: int) -> tuple[Search, int]:
    """Returns the search and how many probes the coarse (64 KiB) part took."""
    s = Search("linear sweep")
    probe = Prober(device, s)
    with Timer() as t:
        size, last_ok = start, 0
        while size <= ceiling and probe(size):
            last_ok, size = size, size + coarse
        if last_ok == 0:
            raise RuntimeError(f"the sweep's first size {start} did not load")
        coarse_probes = s.count
        fine = last_ok + step
        while fine < size and probe(fine):
            last_ok, fine = fine, fine + step
    s.seconds, s.ok, s.fail = t.s, last_ok, min(fine, size)
    return s, coarse_probes


def run(work: Path, cfg: ThresholdConfig = ThresholdConfig()) -> Section:
    sec = Section()
    work.mkdir(parents=True, exist_ok=True)
    with Timer() as total, BenchSim(work / "threshold-state", cfg.board, cfg.firmware) as sim, \
            attached_board(sim, work, log_name="threshold.log") as board:
        device = board.device
        free = device.memory().sys_heap_free
        say(f"threshold: bisection from {free} bytes of free system heap")
        bis = bisection(device, free, cfg.step)
        start = cfg.sweep_from if cfg.sweep_from is not None else down(free * 7 // 8, cfg.sweep_step)
        say(f"threshold: linear sweep from {start} in {cfg.sweep_step // KiB} KiB steps")
        sweep, coarse = linear_sweep(device, start, cfg.sweep_step, cfg.step, up(free, cfg.step))
        device.remove(PATH, missing_ok=True)
    agree = (bis.ok, bis.fail) == (sweep.ok, sweep.fail)
    agree_note = "" if agree else (f"the searches disagree: bisection {bis.ok}..{bis.fail}, "
                                   f"sweep {sweep.ok}..{sweep.fail}")
    details = {"free_sys_heap": free, "threshold_bytes": bis.ok, "bisection_probes": bis.probes,
               "sweep_probes": sweep.probes, "sweep_from": start, "sweep_coarse_probes": coarse}
    note = agree_note or (f"edge {bis.ok} bytes loads, {bis.fail} fails (both searches); sweep from "
                          f"{start // KiB} KiB: {coarse} probes to 64 KiB, {sweep.count - coarse} more to 4 KiB")
    if bis.count > TARGET_PROBES:
        note = f"the bracket from the free heap needed halving ({bis.count} probes); " + note
    sec.rows.append(Row("threshold", "threshold.probes_to_4K", bis.count, "probes", sweep.count,
                        "linear sweep 64 KiB then 4 KiB", sweep.count / bis.count,
                        Target("ours", "<=", TARGET_PROBES), note, details=details))
    sec.rows.append(Row("threshold", "threshold.wall_time_to_4K", bis.seconds, "s", sweep.seconds,
                        "linear sweep", sweep.seconds / bis.seconds if bis.seconds else None, None,
                        f"{bis.seconds / bis.count:.2f} s a probe (on-board write of the model, kpu.load, deinit)"
                        + (f"; {agree_note}" if agree_note else ""),
                        details={"bisection_s": bis.seconds, "sweep_s": sweep.seconds}))
    sec.log.append("threshold bisection probes: " + ", ".join(f"{s}:{'ok' if o else 'no_mem'}" for s, o in bis.probes))
    sec.seconds = total.s
    return sec
