"""The memory-overflow threshold: the largest v3 model kpu.load takes, measured to 4 KiB.

Models are v3 kmodels of an exact size (main_mem 64 KiB, the manifest's default); the threshold is
the largest file that loads. Each test starts from a fresh boot (``power_cycle``). Probes are
hil.device.memory's (models written on the board, drift-compensated; flash probes write only the
part of a model the loader reads: hil.kmodel.lead says what that assumes). A probe that fails must
fail with the profile's exact memory error.

- SD (``threshold_sd_bytes``): bounds from the free system heap, not the profile (a model as big
  as the free heap must fail, half of it should load), both probed, the gap bisected to 4 KiB
  (about 11 probes, ``bisection_probes_sd``). One step past it gives the memory error again, and
  a small model loads right after.
- Flash (``threshold_flash_bytes``): an ISP write per probe, so the search is seeded from the SD
  threshold (this session's, under the same conditions, or measured now; without a card, the free
  heap less the model's main memory and 64 KiB) and confirmed with few probes, widened and
  bisected when the edge is elsewhere (``bisection_probes_flash``).
- GC heap (``gc_heap_shrink_gain_bytes``, where the profile says gc_heap_configurable): a GC heap
  256 KiB smaller leaves that much more system heap: the SD threshold rises by 256 KiB within
  8 KiB. The original size is restored in a ``finally``.

A threshold outside the profile's ``memory.threshold_band`` fails naming the value, the band and
by how much, e.g. "threshold_sd_bytes = 1990656 bytes, below the expected band 2150000..2300000 by
156 KiB (...)".
"""
from __future__ import annotations

import pytest

from hil.device.memory import FlashProbe, SdProbe, Threshold
from hil.kmodel.build import DEFAULT_MAIN_MEM

from . import kpu_support as ks

PROBE = "threshold_probe.kmodel"
GC_SHRINK = 256 * ks.KiB
GC_GAIN_TOLERANCE = 8 * ks.KiB
GC_SMALLEST = 128 * ks.KiB          # MaixPy falls back to 128 KiB when the GC heap does not fit
NO_SD_SEED_MARGIN = 64 * ks.KiB
SEED_MARGIN = 4 * ks.KiB             # allocator headers and alignment between free heap and model


@pytest.fixture
def sd_probe(device, kpu, files, models, firmware):
    """SdProbe(free0) for this board and build; its model file is removed afterwards."""
    path = models.path(PROBE)
    yield lambda free0: SdProbe(device, files, ks.judge(kpu, firmware), path, free0)
    device.remove(path, missing_ok=True)
    files.forget(path)


def _context(where: str, free: int, edge: ks.Edge) -> str:
    return (f"largest v3 model with main_mem {DEFAULT_MAIN_MEM} that kpu.load takes from {where}, "
            f"{free} bytes of system heap free after boot; {edge.count} probes")


def _sd_seed(device, memory_edges, sd_probe, free0: int) -> int:
    """The SD threshold at this GC heap size: remembered from this session, or measured now."""
    gc_heap = ks.gc_heap(device)
    known = memory_edges.recall(gc_heap, free0)
    if known is None:
        # Not measured on this worker (xdist spreads this module over rigs): gallop from what
        # the free heap predicts instead of a full bisection; a wrong guess only costs probes.
        edge = ks.gallop_edge(sd_probe(free0), free0 - DEFAULT_MAIN_MEM - SEED_MARGIN, ceiling=ks.align_up(free0))
        known = memory_edges.remember(Threshold(edge, free0, gc_heap))
    return known.edge.ok


@pytest.mark.requires_sd
@pytest.mark.power_cycle
def test_threshold_sd(device, kpu, models, memory_edges, firmware, measure, sd_probe) -> None:
    gc_heap = ks.gc_heap(device)
    free0 = measure("sys_heap_free_at_boot_bytes", device.memory().sys_heap_free, "bytes")
    good = models.good()
    probe = sd_probe(free0)
    edge = ks.search_from_free_heap(probe, free0)
    memory_edges.remember(Threshold(edge, free0, gc_heap))
    measure("bisection_probes_sd", edge.count, "count")
    # one step past the threshold: the memory error again, and the board stays usable
    if probe(edge.fail):
        ks.fail(f"a {edge.fail}-byte model loaded from /sd on a second try, after the search found "
                f"{edge.ok} the largest that loads (probes {edge.describe()})")
    ks.check_still_loads(kpu, good, f"the memory error for a {edge.fail}-byte model")
    ks.fail_outside_band(measure, "threshold_sd_bytes", edge.ok, "bytes", firmware.memory.threshold_band,
                         _context("/sd", free0, edge))


@pytest.mark.power_cycle
def test_threshold_flash(device, kpu, models, flash_models, memory_edges, firmware, rig, measure,
                         sd_probe) -> None:
    free0 = device.memory().sys_heap_free
    if device.sd_present():
        seed = _sd_seed(device, memory_edges, sd_probe, free0)
    else:
        seed = free0 - DEFAULT_MAIN_MEM - NO_SD_SEED_MARGIN
    offset = rig.storage.model_offset
    edge = ks.gallop_edge(FlashProbe(flash_models, ks.judge(kpu, firmware), offset), seed, ceiling=ks.align_up(free0))
    measure("bisection_probes_flash", edge.count, "count")
    ks.check_still_loads(kpu, models.good(), f"the memory error for a {edge.fail}-byte model in flash")
    ks.fail_outside_band(measure, "threshold_flash_bytes", edge.ok, "bytes", firmware.memory.threshold_band,
                         _context(f"flash at {offset:#x}", free0, edge))


@pytest.mark.requires_sd
@pytest.mark.firmware(gc_heap_configurable=True)
@pytest.mark.power_cycle
def test_threshold_follows_gc_heap_size(device, memory_edges, measure, sd_probe) -> None:
    original = device.gc_heap_size()
    target = original - GC_SHRINK
    if target < GC_SMALLEST:
        pytest.skip(f"GC heap is {original} bytes: shrinking it by {GC_SHRINK} would go below {GC_SMALLEST}")
    free0 = device.memory().sys_heap_free
    base = _sd_seed(device, memory_edges, sd_probe, free0)
    try:
        got = device.set_gc_heap_size(target)
        assert got == target, f"utils.gc_heap_size({target}) did not take effect: after the reboot it reads {got}"
        free1 = measure("sys_heap_free_gc_heap_shrunk_bytes", device.memory().sys_heap_free, "bytes")
        edge = ks.gallop_edge(sd_probe(free1), base + GC_SHRINK, ceiling=ks.align_up(free1))
        measure("threshold_sd_gc_heap_shrunk_bytes", edge.ok, "bytes")
    finally:
        device.set_gc_heap_size(original)
    ks.fail_outside_band(
        measure, "gc_heap_shrink_gain_bytes", edge.ok - base, "bytes",
        (GC_SHRINK - GC_GAIN_TOLERANCE, GC_SHRINK + GC_GAIN_TOLERANCE),
        f"GC heap {original} -> {target} bytes moved the largest loadable model from {base} to {edge.ok} bytes; "
        f"free system heap {free0} -> {free1}; {edge.count} probes")
