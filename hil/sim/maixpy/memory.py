"""The simulated K210's RAM as MaixPy sees it: one place for every memory figure.

Layout (facts/maixpy.md "Memory"): 6 MiB of general SRAM. The running firmware image takes
``profile.sim.runtime_ram`` of it, the MicroPython GC heap is carved next (its size from the
board config ``gc_heap_size``, default ``profile.memory.gc_heap_default``), and the rest is the
*system heap* (newlib malloc): LCD/sensor buffers at boot (``profile.sim.boot_sys_alloc``) and
kpu.load's model buffers come from it.

Model choices (documented guesses, each in one place):
- Every system-heap allocation costs ``round_up(n, 8) + 16`` bytes: 8-byte alignment plus a
  16-byte malloc chunk header (newlib on RV64 keeps two size_t words per chunk).
- ``heap_free()`` is the system heap total minus what is allocated. The real
  ``get_free_heap_size2()`` measures the gap above the heap break, which a free() does not always
  lower; we model a perfect allocator so a healthy build's deinit restores it exactly.
- The boot allocation is taken once per hard boot, exactly ``boot_sys_alloc`` bytes (no header).
  A soft reset does not give system heap back (``sipeed_reset_sys_mem()`` is an empty function in
  MaixPy v0.6.2); only the kpu_net finalisers that run at soft reset free model buffers.
- The GC heap figure (``gc.mem_free()``) is an estimate: a fixed amount used by the runtime after
  boot, plus the shallow-walked size of what user code keeps reachable from its globals, plus
  "garbage" that emulated calls report (bytes read, text printed, code compiled) until the next
  collection. It goes down as programs allocate and back up after ``gc.collect()``; it is not the
  real MicroPython allocator.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Iterable

SRAM_GENERAL = 6 * 1024 * 1024
KSEG_BASE = 0x80000000
MALLOC_ALIGN = 8
MALLOC_HEADER = 16
GC_FALLBACK = 128 * 1024          # MaixPy retries with 128 KiB when the configured heap won't fit
GC_RUNTIME_USED = 96 * 1024       # GC bytes in use right after boot (qstrs, sys, _boot.py leftovers)
GC_BLOCK = 16                     # MicroPython GC block size on a 64-bit port
# The gc heap's start address as the boot log prints it: malloc hands out the first chunk just
# below the end of the image's RAM. 0x280 reproduces the real full build's 0x802ffd80.
GC_ADDR_SLACK = 0x280


def malloc_cost(n: int) -> int:
    """Bytes one malloc(n) takes out of the system heap."""
    return ((max(n, 0) + MALLOC_ALIGN - 1) // MALLOC_ALIGN) * MALLOC_ALIGN + MALLOC_HEADER


class OutOfMemory(Exception):
    """A system-heap allocation did not fit."""


class SystemHeap:
    """newlib malloc's arena: a counter of what is allocated, in one lock."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 0)
        self._used = 0
        self._lock = threading.Lock()

    def alloc(self, n: int) -> int:
        """Allocate n bytes; returns the cost to pass back to free(). Raises OutOfMemory."""
        cost = malloc_cost(n)
        with self._lock:
            if self._used + cost > self.total:
                raise OutOfMemory(n)
            self._used += cost
        return cost

    def take_exact(self, n: int) -> None:
        """Boot-time allocation of exactly n bytes (may leave the heap full, never fails)."""
        with self._lock:
            self._used = min(self.total, self._used + max(n, 0))

    def free(self, cost: int, leak: int = 0) -> None:
        """Give back an allocation, keeping ``leak`` bytes lost for good (a regressed build)."""
        with self._lock:
            self._used = max(0, self._used - max(cost - max(leak, 0), 0))

    @property
    def used(self) -> int:
        return self._used

    @property
    def free_bytes(self) -> int:
        return max(self.total - self._used, 0)


class MemoryLayout:
    """The boot-time split of SRAM for one firmware profile and GC heap size."""

    def __init__(self, runtime_ram: int, boot_sys_alloc: int, gc_heap_size: int) -> None:
        self.runtime_ram = runtime_ram
        self.boot_sys_alloc = boot_sys_alloc
        self.requested_gc = gc_heap_size
        room = SRAM_GENERAL - runtime_ram
        # malloc(gc_heap_size) at boot: fails (and MaixPy falls back to 128 KiB) when it does not
        # fit in what the image leaves free.
        self.gc_fallback = not (0 < gc_heap_size <= room - malloc_cost(0))
        self.gc_heap_size = GC_FALLBACK if self.gc_fallback else gc_heap_size
        self.sys_total = max(room - self.gc_heap_size, 0)

    @property
    def gc_start(self) -> int:
        return KSEG_BASE + self.runtime_ram - GC_ADDR_SLACK

    @property
    def gc_end(self) -> int:
        return self.gc_start + self.gc_heap_size

    def boot_lines(self) -> list[str]:
        """What mp_task prints about the GC heap (before the gc heap line)."""
        if not self.gc_fallback:
            return []
        return [f"GC heap size {self.requested_gc} is too large, reset GC heap size", "GC size 128k"]

    def gc_line(self) -> str:
        return f"[MaixPy] gc heap=0x{self.gc_start:08x}-0x{self.gc_end:08x}({self.gc_heap_size})"


def _shallow_size(obj: Any) -> int:
    """A MicroPython-ish size for one object (not its children)."""
    if obj is None or isinstance(obj, (bool, int)) and -(1 << 62) <= obj < (1 << 62):
        return 0                                   # small ints and constants are immediates
    if isinstance(obj, (bytes, bytearray, str)):
        return 16 + len(obj)
    if isinstance(obj, memoryview):
        return 16
    if isinstance(obj, (list, tuple, set, frozenset)):
        return 16 + 8 * len(obj)
    if isinstance(obj, dict):
        return 32 + 16 * len(obj)
    if isinstance(obj, float):
        return 16
    return 32


class GcHeap:
    """The MicroPython GC heap as gc.mem_free()/mem_alloc() report it (an estimate, see above)."""

    WALK_LIMIT = 20000

    def __init__(self, size: int, roots: Callable[[], Iterable[Any]]) -> None:
        self.size = size
        self._roots = roots
        self._garbage = 0
        self._base = min(GC_RUNTIME_USED, size // 2)
        self.on_collect: list[Callable[[], None]] = []

    def note_garbage(self, n: int) -> None:
        """An emulated call allocated n bytes that become garbage (read buffers, printed text)."""
        self._garbage += max(n, 0)
        if self._base + self._garbage > self.size * 3 // 4:
            self.collect()   # MicroPython collects by itself when an allocation does not fit

    def collect(self) -> None:
        self._garbage = 0
        for hook in list(self.on_collect):
            hook()

    def live(self) -> int:
        seen: set[int] = set()
        stack = list(self._roots())
        total = 0
        while stack and len(seen) < self.WALK_LIMIT:
            obj = stack.pop()
            if id(obj) in seen or callable(obj) or type(obj).__name__ == "module":
                continue
            seen.add(id(obj))
            total += _shallow_size(obj)
            if isinstance(obj, (list, tuple, set, frozenset)):
                stack.extend(obj)
            elif isinstance(obj, dict):
                stack.extend(obj.values())
            else:
                attrs = getattr(obj, "__dict__", None)
                if isinstance(attrs, dict):
                    total += _shallow_size(attrs)
                    stack.extend(attrs.values())
        return total

    def mem_alloc(self) -> int:
        used = self._base + self.live() + self._garbage
        used = ((used + GC_BLOCK - 1) // GC_BLOCK) * GC_BLOCK
        return min(used, self.size)

    def mem_free(self) -> int:
        return self.size - self.mem_alloc()

    def largest_free(self) -> int:
        """What kpu.memtest's bisection of gc_alloc would find (to 1 KiB)."""
        return (self.mem_free() // 1024) * 1024


def sizeof_text(obj: Any) -> int:
    """Rough size of a value an emulated call returns, for GC garbage accounting."""
    try:
        return sys.getsizeof(obj)
    except TypeError:
        return 32
