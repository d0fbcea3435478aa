"""The memory-overflow threshold: the largest v3 model kpu.load takes, measured to 4 KiB.

The models are v3 kmodels of an exact size (hil.kmodel.build.build_v3, main_mem 64 KiB, the
manifest's default) and the threshold is the largest file size that loads. Each test starts from a
fresh boot (``power_cycle`` marker), so what earlier tests did to the heap does not count.

SD (``threshold_sd_bytes``): bisection between bounds taken from the free system heap
(``device.memory().sys_heap_free``), not from the profile: a model as big as the whole free heap
must fail (it also needs its main memory) and half of it should load; both are probed, then the
gap is bisected to 4 KiB (about 11 probes, recorded as ``bisection_probes_sd``). Every probe's model
is written on the board by the on-board writer (``device.write_model_onboard``: no upload per
probe). A probe that fails must fail with the profile's exact memory error. Drift compensation
(SdProbe below): each probe's size is shifted by however much the free heap moved since the
start, so a build that leaks on deinit (each successful probe loses some heap) still yields the
edge at the start's free heap instead of a value that depends on how many probes loaded. One step
past the threshold then gives the memory error, and a small model loads right after.

Flash (``threshold_flash_bytes``): an ISP write per probe, so uploading a multi-MB model per probe
is far too slow, and MaixPy has no flash write from Python (Maix.utils has flash_read only). So:
- the search is seeded from the SD threshold (measured in this session under the same conditions,
  or measured now; without an SD card, from the free heap minus the model's main memory and
  64 KiB) and confirmed with few probes: the seed and the seed + 4 KiB, widened by doubling steps
  and bisected when the edge is elsewhere (``bisection_probes_flash``);
- each probe writes only the leading part of its model over ISP (flash_lead below: the
  header, output table and layer headers, and the first conv layer's argument struct with its
  register words, rounded up to a 4 KiB sector). ASSUMPTION: the loader takes the model's size
  from its header (the sum of the layer body sizes), allocates it (and main_mem) from the system
  heap, and reads the bodies without interpreting them except the first conv layer's arguments
  (MaixPy reads the input shape there); so the allocation, which decides the memory error, sees
  the true size, and the bytes past the lead (whatever the flash held) are never judged. This is
  what hil.kmodel.format validates (headers and tables only, sizing a flash model with
  model_size_from_header), and the reference loader that the framework is tested against
  behaves the same. On a real board a loader that checked
  body contents at load time would make every probe fail with a format error, not the memory
  error; load_or_overflow fails the test saying so rather than reporting a wrong threshold.
Each ISP write reboots the board, so every flash probe runs on a fresh boot.

GC heap (``gc_heap_shrink_gain_bytes``, where the profile says gc_heap_configurable): shrinking
the MicroPython GC heap by 256 KiB (``utils.gc_heap_size(n)``, the board reboots) leaves that much
more system heap, so the SD threshold must rise by 256 KiB within 8 KiB. The original size is
restored in a ``finally`` (another reboot).

A threshold outside the profile's ``memory.threshold_band`` fails naming the value, the band and
by how much, e.g. "threshold_sd_bytes = 1990656 bytes, below the expected band 2150000..2300000 by
156 KiB (...)".
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import pytest

import kpu_support as ks
from hil.kmodel.build import DEFAULT_MAIN_MEM, build_v3
from hil.kmodel.format import header_bytes_needed
from hil.kmodel.kpu import REGS

PROBE_PATH = ks.SD_DIR + "/threshold_probe.kmodel"
GC_SHRINK = 256 * ks.KiB
GC_GAIN_TOLERANCE = 8 * ks.KiB
GC_SMALLEST = 128 * ks.KiB          # MaixPy falls back to 128 KiB when the GC heap does not fit
NO_SD_SEED_MARGIN = 64 * ks.KiB
SEED_MARGIN = 4 * ks.KiB             # allocator headers and alignment between free heap and model


@dataclass
class SdThreshold:
    """A measured SD threshold: the edge, the free heap it was measured against, the GC heap."""
    edge: ks.Edge
    free: int
    gc_heap: int


_SD_THRESHOLDS: dict[tuple[str, int], SdThreshold] = {}


def remember_sd_threshold(rig: Any, result: SdThreshold) -> None:
    _SD_THRESHOLDS[(rig.name, result.gc_heap)] = result


def recall_sd_threshold(rig: Any, gc_heap: int, free: int) -> SdThreshold | None:
    """A threshold this session measured under the same conditions (same GC heap, free system
    heap at a fresh boot within one step of now)."""
    found = _SD_THRESHOLDS.get((rig.name, gc_heap))
    if found is not None and abs(found.free - free) < ks.STEP:
        return found
    return None


class SdProbe:
    """One SD probe: a v3 model of the asked size written on the board, then kpu.load.

    Drift compensation: the size asked for is the size that would load against the free heap
    measured at the start (``free0``); when the free heap has since moved (a build that leaks on
    deinit loses some with every successful probe), the model written is shifted by the same
    amount, so every probe asks the same question and the edge found is the one at ``free0``.
    On a build that does not leak the shift is zero and the sizes are exactly those asked for.
    """

    def __init__(self, device: Any, firmware: Any, path: str, free0: int,
                 main_mem: int = DEFAULT_MAIN_MEM, seed: int = 0) -> None:
        self.device = device
        self.firmware = firmware
        self.path = path
        self.free0 = free0
        self.main_mem = main_mem
        self.seed = seed
        self.written: list[int] = []

    def __call__(self, size: int) -> bool:
        drift = self.device.memory().sys_heap_free - self.free0
        real = size + drift
        self.device.write_model_onboard(self.path, real, self.main_mem, self.seed)
        ks.forget(self.device, self.path)
        self.written.append(real)
        return ks.load_or_overflow(self.device, self.firmware, self.path, f"SD probe of {real} bytes ({self.path})")


def flash_lead(model: bytes, align: int = ks.STEP) -> bytes:
    """The leading part of a v3 model that the loader interprets when it loads from flash.

    That is the header, the output table, the layer headers (the loader sums their body sizes to
    know how many bytes to allocate and read) and the first conv layer's argument struct with its
    register words (MaixPy reads the input shape from them). Rounded up to a flash sector.
    Assumption (module docstring): the loader allocates the whole model from
    the header before reading the bodies and does not interpret any other body at load time.
    """
    tables = header_bytes_needed(model[:64])
    outputs = struct.unpack_from("<I", model, 24)[0]
    if len(model) < tables + 24:
        return model
    layer_offset = struct.unpack_from("<I", model, tables + 8)[0]   # kpu_model_conv_layer_argument_t
    end = max(tables + 24, layer_offset + REGS, 28 + 8 * outputs)
    end = -(-end // align) * align
    return model[:min(end, len(model))]


def _context(where: str, free: int, edge: ks.Edge) -> str:
    return (f"largest v3 model with main_mem {DEFAULT_MAIN_MEM} that kpu.load takes from {where}, "
            f"{free} bytes of system heap free after boot; {edge.count} probes")


def _sd_seed(device, firmware, rig, free0: int) -> int:
    """The SD threshold at this GC heap size: remembered from this session, or measured now."""
    gc_heap = device.gc_heap_size()
    known = recall_sd_threshold(rig, gc_heap, free0)
    if known is None:
        # Not measured on this worker (xdist spreads this module over rigs): gallop from what
        # the free heap predicts instead of a full bisection; a wrong guess only costs probes.
        ks.ensure_dir(device, ks.SD_DIR)
        try:
            edge = ks.gallop_edge(SdProbe(device, firmware, PROBE_PATH, free0),
                                  free0 - DEFAULT_MAIN_MEM - SEED_MARGIN, ceiling=ks.align_up(free0))
        finally:
            device.remove(PROBE_PATH, missing_ok=True)
        known = SdThreshold(edge, free0, gc_heap)
        remember_sd_threshold(rig, known)
    return known.edge.ok


@pytest.mark.requires_sd
@pytest.mark.power_cycle
def test_threshold_sd(device, firmware, rig, measure) -> None:
    gc_heap = device.gc_heap_size()
    free0 = device.memory().sys_heap_free
    measure("sys_heap_free_at_boot_bytes", free0, "bytes")
    ks.ensure_dir(device, ks.SD_DIR)
    good = ks.good_model_path(device, firmware, ks.store_for(device))
    probe = SdProbe(device, firmware, PROBE_PATH, free0)
    try:
        edge = ks.search_from_free_heap(probe, free0)
        remember_sd_threshold(rig, SdThreshold(edge, free0, gc_heap))
        measure("bisection_probes_sd", edge.count, "count")
        # one step past the threshold: the memory error again, and the board stays usable
        if probe(edge.fail):
            pytest.fail(f"a {edge.fail}-byte model loaded from /sd on a second try, after the search found "
                        f"{edge.ok} the largest that loads (probes {edge.describe()})")
        ks.check_still_loads(device, good, f"the memory error for a {edge.fail}-byte model")
    finally:
        device.remove(PROBE_PATH, missing_ok=True)
        ks.forget(device, PROBE_PATH)
    ks.fail_outside_band(measure, "threshold_sd_bytes", edge.ok, "bytes", firmware.memory.threshold_band,
                         _context("/sd", free0, edge))


class FlashProbe:
    """One flash probe: the lead of a v3 model of the asked size written over ISP, kpu.load(offset)."""

    def __init__(self, device, firmware, offset: int) -> None:
        self.device = device
        self.firmware = firmware
        self.offset = offset

    def __call__(self, size: int) -> bool:
        lead = flash_lead(build_v3(size, DEFAULT_MAIN_MEM, 0))
        ks.flash_model(self.device, self.offset, lead)
        return ks.load_or_overflow(self.device, self.firmware, self.offset,
                                   f"flash probe of a {size}-byte model at {self.offset:#x} "
                                   f"(first {len(lead)} bytes written)")


@pytest.mark.power_cycle
def test_threshold_flash(device, firmware, rig, measure) -> None:
    free0 = device.memory().sys_heap_free
    if device.sd_present():
        seed = _sd_seed(device, firmware, rig, free0)
    else:
        seed = free0 - DEFAULT_MAIN_MEM - NO_SD_SEED_MARGIN
    edge = ks.gallop_edge(FlashProbe(device, firmware, rig.storage.model_offset), seed,
                          ceiling=ks.align_up(free0))
    measure("bisection_probes_flash", edge.count, "count")
    good = ks.good_model_path(device, firmware, ks.store_for(device))
    ks.check_still_loads(device, good, f"the memory error for a {edge.fail}-byte model in flash")
    ks.fail_outside_band(measure, "threshold_flash_bytes", edge.ok, "bytes", firmware.memory.threshold_band,
                         _context(f"flash at {rig.storage.model_offset:#x}", free0, edge))


@pytest.mark.requires_sd
@pytest.mark.firmware(gc_heap_configurable=True)
@pytest.mark.power_cycle
def test_threshold_follows_gc_heap_size(device, firmware, rig, measure) -> None:
    original = device.gc_heap_size()
    target = original - GC_SHRINK
    if target < GC_SMALLEST:
        pytest.skip(f"GC heap is {original} bytes: shrinking it by {GC_SHRINK} would go below {GC_SMALLEST}")
    free0 = device.memory().sys_heap_free
    base = _sd_seed(device, firmware, rig, free0)
    try:
        got = device.set_gc_heap_size(target)
        assert got == target, f"utils.gc_heap_size({target}) did not take effect: after the reboot it reads {got}"
        free1 = device.memory().sys_heap_free
        measure("sys_heap_free_gc_heap_shrunk_bytes", free1, "bytes")
        edge = ks.gallop_edge(SdProbe(device, firmware, PROBE_PATH, free1), base + GC_SHRINK,
                              ceiling=ks.align_up(free1))
        measure("threshold_sd_gc_heap_shrunk_bytes", edge.ok, "bytes")
    finally:
        device.remove(PROBE_PATH, missing_ok=True)
        ks.forget(device, PROBE_PATH)
        device.set_gc_heap_size(original)
    gain = edge.ok - base
    ks.fail_outside_band(
        measure, "gc_heap_shrink_gain_bytes", gain, "bytes", (GC_SHRINK - GC_GAIN_TOLERANCE, GC_SHRINK + GC_GAIN_TOLERANCE),
        f"GC heap {original} -> {target} bytes moved the largest loadable model from {base} to {edge.ok} bytes; "
        f"free system heap {free0} -> {free1}; {edge.count} probes")
