"""Finding the memory edge: the largest model size that still loads, to a step (4 KiB).

Device-independent: every search takes ``loads(size) -> bool`` (write a model of that size, try
kpu.load, free it) and records each probe in order. Used by the memory-threshold suite and by
its benchmark, so both measure the same algorithm.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from hil.errors import HilError

KiB = 1024
STEP = 4 * KiB
Loads = Callable[[int], bool]


class ThresholdSearchError(HilError):
    """The probes contradict the search's premise (nothing loads, or everything does)."""


@dataclass
class Edge:
    """The memory edge: ``ok`` loaded, ``fail`` = ok + step did not; every probe in order."""
    ok: int
    fail: int
    probes: list[tuple[int, bool]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.probes)

    def describe(self) -> str:
        return ", ".join(f"{size}:{'ok' if ok else 'no_mem'}" for size, ok in self.probes)


def align_down(n: int, step: int = STEP) -> int:
    return n // step * step


def align_up(n: int, step: int = STEP) -> int:
    return -(-n // step) * step


def _recording(loads: Loads, probes: list[tuple[int, bool]]) -> Loads:
    def probe(size: int) -> bool:
        ok = loads(size)
        probes.append((size, ok))
        return ok
    return probe


def bisect_edge(loads: Loads, ok: int, fail: int, step: int = STEP,
                probes: list[tuple[int, bool]] | None = None) -> Edge:
    """Bisect between a size that loads and one that does not (fail - ok a multiple of step)."""
    probes = [] if probes is None else probes
    probe = _recording(loads, probes)
    while fail - ok > step:
        mid = ok + (fail - ok) // step // 2 * step
        if probe(mid):
            ok = mid
        else:
            fail = mid
    return Edge(ok, fail, probes)


def search_from_free_heap(loads: Loads, free: int, step: int = STEP, smallest: int = 64 * KiB) -> Edge:
    """Largest loadable size, bracketed from the free system heap and bisected to ``step``.

    Upper bound: a model as large as the whole free heap (it also needs its main memory, so it
    cannot fit). Lower bound: half the free heap. Both are probed, not assumed; a lower bound that
    does not load is halved until one does.
    """
    probes: list[tuple[int, bool]] = []
    probe = _recording(loads, probes)
    hi = align_up(free, step)
    if probe(hi):
        raise ThresholdSearchError(f"a {hi}-byte model loaded although only {free} bytes of system heap were free: "
                    f"heap_free() does not report what kpu.load can use")
    lo = align_down(free // 2, step)
    while not probe(lo):
        hi, lo = lo, align_down(lo // 2, step)
        if lo < smallest:
            raise ThresholdSearchError(f"not even a {hi}-byte model loads with {free} bytes of system heap free "
                        f"(probes {Edge(0, 0, probes).describe()})")
    return bisect_edge(loads, lo, hi, step, probes)


def gallop_edge(loads: Loads, seed: int, step: int = STEP, floor: int = 64 * KiB,
                ceiling: int = 16 * 1024 * KiB) -> Edge:
    """Confirm an expected edge with few probes: ``seed`` and seed + step; when the edge is
    elsewhere, widen the bracket by doubling steps, then bisect."""
    probes: list[tuple[int, bool]] = []
    probe = _recording(loads, probes)
    seed = align_down(seed, step)
    if probe(seed):
        ok, d = seed, step
        while True:
            x = ok + d
            if x > ceiling:
                raise ThresholdSearchError(f"models up to {ok} bytes load (probes {Edge(0, 0, probes).describe()}); "
                            f"no memory edge below {ceiling}")
            if not probe(x):
                return bisect_edge(loads, ok, x, step, probes)
            ok, d = x, d * 2
    fail, d = seed, step
    while True:
        x = seed - d
        if x < floor:
            raise ThresholdSearchError(f"no model of {floor} bytes or more loads (probes {Edge(0, 0, probes).describe()})")
        if probe(x):
            return bisect_edge(loads, x, fail, step, probes)
        fail, d = x, d * 2
