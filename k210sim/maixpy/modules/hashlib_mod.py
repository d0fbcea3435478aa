"""uhashlib (also ``hashlib``): the adapter over the K210 SHA-256 engine service.

MaixPy v0.6.2 replaces MicroPython's uhashlib with moduhashlib_maixpy.c (sipeed/MaixPy-v1@973361c0d
components/micropython/port/src/moduhashlib_maixpy.c): ``sha256`` only, with ``update``, ``digest``
and ``calculate_hard``; no sha1, no md5, no hexdigest. The engine's limits (one engine for all
objects, a 16-bit block count, digest pads every time) are the firmware's: k210sim.firmware.sha.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.fwcall import call
from k210sim.maixpy.modules import final, module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def _buffer(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError("object with buffer protocol required") from None


def build(rt: "Runtime", name: str):

    @final
    class sha256:
        __slots__ = ("_id", "__weakref__")

        def __init__(self, *args: Any) -> None:
            if len(args) > 1:
                raise TypeError("function expected at most 1 arguments, got %d" % len(args))
            data = _buffer(args[0]) if args else None
            self._id = call(rt, "sha_new", data=data)
            weakref.finalize(self, rt.fw.call, "sha_forget", {"id": self._id}).atexit = False

        def update(self, data: Any) -> None:
            call(rt, "sha_update", id=self._id, data=_buffer(data))

        def digest(self) -> bytes:
            return call(rt, "sha_digest", id=self._id)

        def calculate_hard(self, data: Any) -> bytes:
            return call(rt, "sha_hard", data=_buffer(data))

        def __repr__(self) -> str:
            return "<sha256>"

    return module(name, sha256=sha256)
