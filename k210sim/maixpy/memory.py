"""The MicroPython GC heap as gc.mem_free()/mem_alloc() report it: an estimate, interpreter side.

The GC heap's place and size are the firmware's (k210sim.firmware.services boot_memory: newlib's
first chunk, the configured size or the 128 KiB fallback); its total in blocks is
``gc_pool_bytes`` (micropython@ced340d py/gc.c gc_init: 32-byte blocks on RV64, the tables off
the front, so mem_free() + mem_alloc() == 518144 for 512 KiB at 0x802ffd80).

What is in use is estimated, not allocated: a fixed amount after boot (about 17 KiB: MaixPy-v1
issue 490 reports a fresh board's usage; UNCONFIRMED to the byte), plus the shallow-walked size
of what user code keeps reachable from its globals, each object rounded up to whole 32-byte
blocks, plus "garbage" that emulated calls report (bytes read, text printed, code compiled)
until the next collection. It goes down after gc.collect(); it is not MicroPython's allocator
(the interpreter of issue 15 brings the real one).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterable

GC_BLOCK = 32                     # MICROPY_BYTES_PER_GC_BLOCK: 4 words on the 64-bit port
GC_RUNTIME_USED = 17 * 1024       # in use right after boot (MaixPy-v1 issue 490; UNCONFIRMED)


def _blocks(n: int) -> int:
    return ((n + GC_BLOCK - 1) // GC_BLOCK) * GC_BLOCK


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
        self.size = size                 # gc_pool_bytes: the blocks mem_free + mem_alloc cover
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
            total += _blocks(_shallow_size(obj))
            if isinstance(obj, (list, tuple, set, frozenset)):
                stack.extend(obj)
            elif isinstance(obj, dict):
                stack.extend(obj.values())
            else:
                attrs = getattr(obj, "__dict__", None)
                if isinstance(attrs, dict):
                    total += _blocks(_shallow_size(attrs))
                    stack.extend(attrs.values())
        return total

    def mem_alloc(self) -> int:
        used = _blocks(self._base + self.live() + self._garbage)
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
