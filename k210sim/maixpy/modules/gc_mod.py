"""gc: collect/mem_free/mem_alloc over the estimated GC heap (k210sim.maixpy.memory.GcHeap)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def build(rt: "Runtime", name: str):
    state = {"enabled": True, "threshold": -1}

    def collect() -> None:
        rt.gc.collect()          # runs pending finalisers (kpu_net __del__) too

    def mem_free() -> int:
        return rt.gc.mem_free()

    def mem_alloc() -> int:
        return rt.gc.mem_alloc()

    def enable() -> None:
        state["enabled"] = True

    def disable() -> None:
        state["enabled"] = False

    def isenabled() -> bool:
        return state["enabled"]

    def threshold(n: Any = None) -> Any:
        if n is None:
            return state["threshold"]
        state["threshold"] = int(n)
        return None

    return module(name, collect=collect, mem_free=mem_free, mem_alloc=mem_alloc, enable=enable,
                  disable=disable, isenabled=isenabled, threshold=threshold)
