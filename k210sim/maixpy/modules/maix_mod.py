"""Maix: MaixPy's board module. Only ``Maix.utils`` is emulated (the peripherals are not).

An adapter over the firmware services (sipeed/MaixPy-v1@973361c0d
components/micropython/port/src/Maix/Maix_utils.c): ``utils.gc_heap_size()`` reads
/flash/freq.conf; ``utils.gc_heap_size(n)`` saves n there and returns None (the new size takes
effect at the next hard reset; nothing reboots); ``utils.heap_free()`` is the gap above the
sbrk break; ``utils.flash_read(addr, n)`` reads the SPI flash. The module reports its name as
'machine', as MaixPy's modMaix.c does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k210sim.maixpy.fwcall import call
from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def _int(value: Any) -> int:
    if type(value) is bool:
        return int(value)
    if type(value) is not int:
        raise TypeError("can't convert %s to int" % type(value).__name__)
    return value


def build(rt: "Runtime", name: str):

    def gc_heap_size(*args: Any) -> Any:
        if len(args) > 1:   # MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(..., 0, 1, ...)
            raise TypeError("function expected at most 1 arguments, got %d" % len(args))
        if not args:
            return call(rt, "gc_heap_size", value=None)
        return call(rt, "gc_heap_size", value=_int(args[0]))

    def heap_free() -> int:
        return call(rt, "heap_free")

    def flash_read(addr: Any, length: Any) -> bytes:
        addr, length = _int(addr), _int(length)
        if length < 0 or length > rt.gc.mem_free():
            raise MemoryError("memory allocation failed, allocating %d bytes" % (length & (2**64 - 1)))
        data = call(rt, "flash_read", addr=addr, length=length)
        rt.gc.note_garbage(length)
        return data

    utils = type("utils", (), {
        "gc_heap_size": staticmethod(gc_heap_size),
        "heap_free": staticmethod(heap_free),
        "flash_read": staticmethod(flash_read),
    })
    return module(name, utils=utils)
