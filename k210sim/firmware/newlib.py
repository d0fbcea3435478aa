"""newlib's malloc on the K210, over the SDK's sbrk: the system heap that kpu.load allocates from.

Sources:
- sipeed/kendryte-standalone-sdk@7fdb511fe (MaixPy-v1@973361c0d's submodule) lib/bsp/syscalls.c
  sys_brk (l.151-211): the break starts at ``_heap_start``; moving it past ``_heap_end`` fails
  with ``LOGE(TAG, "Out of memory\\r\\n")`` (TAG "SYSCALL") and malloc gets no memory; moving it
  into the iomem heap (above ``_ioheap_line``) prints "Out of memory!" and hangs.
- sipeed/MaixPy-v1@973361c0d components/kendryte_sdk/src/sipeed_mem.c get_free_heap_size2():
  ``Maix.utils.heap_free()`` is ``_ioheap_line + 0x40000000 - _heap_cur``: the gap above the
  break, not the free bytes inside the heap.
- newlib's mallocr.c (Doug Lea 2.6.x, the toolchain's libc; MaixPy links no nano.specs):
  16-byte alignment, 32-byte minimum chunk, an 8-byte size header; the top chunk grows by
  ``sbrk(nb + top_pad + MINSIZE)`` rounded up to a 4 KiB page (malloc_extend_top: the whole
  request, not only what the top chunk lacks); free() merges with neighbours and the top, and
  trims the top back by whole pages once it reaches DEFAULT_TRIM_THRESHOLD (128 KiB), keeping
  less than a page plus MINSIZE. Bin selection is modelled as best fit, lowest address first
  (dlmalloc's exact bin order is not modelled: UNCONFIRMED for fragmented heaps).
- No iomem allocation is modelled (``_ioheap_line`` stays at ``_heap_end``): UNCONFIRMED which
  boot-time buffers MaixPy v0.6.2 takes from iomem instead of malloc.
"""
from __future__ import annotations

import bisect
import threading
from typing import Callable

SIZE_SZ = 8
ALIGN = 16
MINSIZE = 32
PAGE = 4096
TRIM_THRESHOLD = 128 * 1024
TOP_PAD = 0


def request2size(n: int) -> int:
    """mallocr.c request2size on RV64."""
    size = n + SIZE_SZ + ALIGN - 1
    return MINSIZE if size < MINSIZE + ALIGN - 1 else size & ~(ALIGN - 1)


class NewlibHeap:
    """malloc/free over [heap_start, heap_end); addresses are the K210's (0x80xxxxxx)."""

    def __init__(self, heap_start: int, heap_end: int,
                 on_sbrk_fail: Callable[[], None] | None = None) -> None:
        self.heap_start = heap_start
        self.heap_end = heap_end
        self.brk = heap_start                  # _heap_cur
        self.on_sbrk_fail = on_sbrk_fail
        self._lock = threading.RLock()
        self._top: int | None = None           # chunk address of the top chunk
        self._top_size = 0
        self._used: dict[int, int] = {}        # chunk address -> chunk size (in use)
        self._free_addrs: list[int] = []       # sorted chunk addresses of free chunks
        self._free: dict[int, int] = {}        # chunk address -> size

    # -- sbrk ----------------------------------------------------------------------------------
    def _sbrk(self, incr: int) -> int | None:
        new = self.brk + incr
        if new > self.heap_end:
            if self.on_sbrk_fail is not None:
                self.on_sbrk_fail()
            return None
        old, self.brk = self.brk, new
        return old

    def _extend_top(self, nb: int) -> None:
        sbrk_size = nb + TOP_PAD + MINSIZE
        first = self._top is None
        if not first:
            sbrk_size = (sbrk_size + PAGE - 1) & ~(PAGE - 1)
        old_end = None if first else self._top + self._top_size
        brk = self._sbrk(sbrk_size)
        if brk is None:
            return
        if not first and brk == old_end and old_end % PAGE == 0:
            self._top_size += sbrk_size
            return
        # first time through: align the first chunk, then take the break to a page boundary
        correction = (-(brk + 2 * SIZE_SZ)) % ALIGN
        top = brk + correction
        correction += PAGE - ((top + sbrk_size) % PAGE)
        if self._sbrk(correction) is None:
            self.brk -= sbrk_size
            return
        self._top = top
        self._top_size = self.brk - top

    # -- malloc / free ---------------------------------------------------------------------------
    def malloc(self, n: int) -> int | None:
        """The user pointer (chunk + 16), or None (the firmware's NULL)."""
        if n < 0 or n >= 1 << 63:
            return None
        nb = request2size(n)
        with self._lock:
            best = None
            for addr in self._free_addrs:
                size = self._free[addr]
                if size >= nb and (best is None or size < self._free[best]):
                    best = addr
            if best is not None:
                return self._take_free(best, nb)
            if self._top is None or self._top_size - nb < MINSIZE:
                self._extend_top(nb)
                if self._top is None or self._top_size - nb < MINSIZE:
                    return None
            addr = self._top
            self._top += nb
            self._top_size -= nb
            self._used[addr] = nb
            return addr + 2 * SIZE_SZ

    def _take_free(self, addr: int, nb: int) -> int:
        size = self._free.pop(addr)
        self._free_addrs.remove(addr)
        if size - nb >= MINSIZE:
            self._add_free(addr + nb, size - nb)
            size = nb
        self._used[addr] = size
        return addr + 2 * SIZE_SZ

    def _add_free(self, addr: int, size: int) -> None:
        bisect.insort(self._free_addrs, addr)
        self._free[addr] = size

    def free(self, ptr: int | None) -> None:
        if ptr is None:
            return
        with self._lock:
            addr = ptr - 2 * SIZE_SZ
            size = self._used.pop(addr, None)
            if size is None:
                return                      # a double free: newlib would corrupt itself
            i = bisect.bisect_left(self._free_addrs, addr)
            if i > 0:                       # merge with the free chunk before
                prev = self._free_addrs[i - 1]
                if prev + self._free[prev] == addr:
                    size += self._free.pop(prev)
                    self._free_addrs.pop(i - 1)
                    addr = prev
            nxt = addr + size
            if nxt in self._free:
                size += self._free.pop(nxt)
                self._free_addrs.remove(nxt)
            if self._top is not None and addr + size == self._top:
                self._top = addr
                self._top_size += size
                if self._top_size >= TRIM_THRESHOLD:
                    self._trim()
            else:
                self._add_free(addr, size)

    def _trim(self) -> None:
        extra = ((self._top_size - TOP_PAD - MINSIZE + PAGE - 1) // PAGE - 1) * PAGE
        if extra < PAGE:
            return
        self.brk -= extra
        self._top_size -= extra

    # -- figures ------------------------------------------------------------------------------
    @property
    def gap(self) -> int:
        """get_free_heap_size2(): the bytes above the break (Maix.utils.heap_free())."""
        return self.heap_end - self.brk

    def usable(self, ptr: int) -> int:
        return self._used.get(ptr - 2 * SIZE_SZ, 0)
