"""Models sized against the board's free system heap: probes for the largest model that loads
(from SD and from flash), thresholds remembered for the session, and model pairs that fit alone
but not together.

A probe is ``loads(size) -> bool`` for hil.threshold's searches. Whether one load counts as
"loaded" or "ran out of memory" is judged by ``judge(source, what) -> bool``, which the suites
give (the exact error text is the firmware profile's business, not the library's).

SD probes write each model on the board (no upload: generated there, or its lead grown to size,
hil.device.api.Device.write_sized) and compensate drift: each probe's size is
shifted by however much the free heap moved since the start, so a build that leaks on deinit
(each successful probe loses some heap) still yields the edge at the start's free heap instead of
a value that depends on how many probes loaded. On a build that does not leak the shift is zero.

Flash probes write only the lead of each model (hil.kmodel.lead), over ISP (every ISP write
reboots the board, so every flash probe runs on a fresh boot) or through the firmware.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hil.device.api import Device
from hil.device.files import FileCache
from hil.device.flash import FlashModels
from hil.kmodel.build import DEFAULT_MAIN_MEM, build_v3
from hil.kmodel.fixtures import Recipe
from hil.threshold import STEP, Edge, align_down

Judge = Callable[[str | int, str], bool]


class SdProbe:
    """One SD probe: a v3 model of the asked size (drift-compensated) written on the board, then
    judged. ``written`` lists the sizes really written."""

    def __init__(self, device: Device, files: FileCache, judge: Judge, path: str, free0: int,
                 main_mem: int = DEFAULT_MAIN_MEM, seed: int = 0) -> None:
        self.device, self.files, self.judge = device, files, judge
        self.path, self.free0, self.main_mem, self.seed = path, free0, main_mem, seed
        self.written: list[int] = []

    def __call__(self, size: int) -> bool:
        with self.device.lifecycle.steps("memory probe", source="sd", size=size, show=True) as step:
            real = size + self.device.memory().sys_heap_free - self.free0
            self.files.sized(self.path, Recipe("v3", size=real, main_mem=self.main_mem, seed=self.seed))
            self.written.append(real)
            loads = self.judge(self.path, f"SD probe of {real} bytes ({self.path})")
            step.args["loads"] = loads
            step.summary = f"a {real}-byte model from SD {'loads' if loads else 'does not load'}" + (
                f" (asked {size}, shifted by the heap's drift)" if real != size else "")
            return loads


class FlashProbe:
    """One flash probe: the lead of a v3 model of the asked size written over ISP, then judged."""

    def __init__(self, flash: FlashModels, judge: Judge, offset: int, main_mem: int = DEFAULT_MAIN_MEM) -> None:
        self.flash, self.judge, self.offset, self.main_mem = flash, judge, offset, main_mem

    def __call__(self, size: int) -> bool:
        with self.flash.lifecycle.steps("memory probe", source="flash", size=size, show=True) as step:
            lead = self.flash.write_lead(self.offset, build_v3(size, self.main_mem, 0))
            loads = self.judge(self.offset, f"flash probe of a {size}-byte model at {self.offset:#x} "
                                            f"(first {len(lead)} bytes written)")
            step.args["loads"] = loads
            step.summary = f"a {size}-byte model at {self.offset:#x} {'loads' if loads else 'does not load'}"
            return loads


@dataclass(frozen=True)
class Threshold:
    """A measured SD threshold: the edge, the free heap it was measured against, the GC heap."""
    edge: Edge
    free: int
    gc_heap: int


class MemoryEdges:
    """What this session measured about memory edges on one board."""

    def __init__(self) -> None:
        self._sd: dict[int, Threshold] = {}
        self._pair: tuple[int, int] | None = None

    def remember(self, result: Threshold) -> Threshold:
        self._sd[result.gc_heap] = result
        return result

    def recall(self, gc_heap: int, free: int) -> Threshold | None:
        """A threshold measured under the same conditions: the same GC heap, and the free system
        heap at a fresh boot within one step of now."""
        found = self._sd.get(gc_heap)
        return found if found is not None and abs(found.free - free) < STEP else None

    def pair(self, free: int, shares: tuple[float, float]) -> tuple[int, int]:
        """Sizes of two models of about ``shares`` of the free heap: each fits alone, the two
        never fit together. The same pair as last time while it still qualifies (its models are
        then on the board already)."""
        last = self._pair
        if last is None or not (last[0] + last[1] > free > last[0] + DEFAULT_MAIN_MEM):
            last = self._pair = (align_down(int(free * shares[0])), align_down(int(free * shares[1])))
        return last
