"""Maix: MaixPy's board module. Only ``Maix.utils`` is emulated (the peripherals are not).

``utils.gc_heap_size()`` reads the configured GC heap size (board config "gc_heap_size", default
profile.memory.gc_heap_default). ``utils.gc_heap_size(n)`` stores n and, as the MaixPy wiki
describes, the board restarts so the new size takes effect (the v0.6.2 C function only saves
it; the reboot is requested here through ctx.request_reset). ``utils.heap_free()`` is the free
system heap. ``utils.flash_read(addr, n)`` reads the SPI flash. The module reports its name as
'machine', as MaixPy's modMaix.c does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hil.sim.maixpy.modules import module
from hil.sim.maixpy.mperrors import EINVAL, EIO, mp_oserror

if TYPE_CHECKING:
    from hil.sim.maixpy.runtime import Runtime


def build(rt: "Runtime", name: str):
    board = rt.board

    def gc_heap_size(*args: Any) -> Any:
        if not args:
            return board.configured_gc_heap()
        if len(args) != 1:
            raise mp_oserror(EINVAL)
        size = args[0]
        if type(size) is not int:
            raise TypeError("can't convert %s to int" % type(size).__name__)
        with rt.native():
            try:
                rt.ctx.storage.set_config("gc_heap_size", size)
            except OSError:
                raise mp_oserror(EIO) from None
            board.reboot("Maix.utils.gc_heap_size(%d)" % size)
        return None

    def heap_free() -> int:
        return board.sysheap.free_bytes

    def flash_read(addr: Any, length: Any) -> bytes:
        addr, length = int(addr), int(length)
        with rt.native():
            flash = rt.ctx.storage.flash
            if addr < 0 or length < 0 or addr + length > flash.size:
                raise mp_oserror(EIO)
            data = flash.read(addr, length)
        rt.gc.note_garbage(length)
        return data

    utils = type("utils", (), {
        "gc_heap_size": staticmethod(gc_heap_size),
        "heap_free": staticmethod(heap_free),
        "flash_read": staticmethod(flash_read),
    })
    return module(name, utils=utils)
