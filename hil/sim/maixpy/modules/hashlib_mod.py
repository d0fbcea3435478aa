"""uhashlib (also ``hashlib``): MaixPy's hardware sha256 only.

MaixPy v0.6.2 replaces MicroPython's uhashlib with moduhashlib_maixpy.c, which has ``sha256``
(update, digest, calculate_hard) and nothing else: no sha1, no md5, no hexdigest (use
ubinascii.hexlify(h.digest())). Deliberately faithful; tools probe with ``hashlib.sha256``.
"""
from __future__ import annotations

import hashlib as host_hashlib
from typing import TYPE_CHECKING, Any

from hil.sim.maixpy.modules import final, module

if TYPE_CHECKING:
    from hil.sim.maixpy.runtime import Runtime


def _buffer(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError("object with buffer protocol required") from None


@final
class sha256:
    __slots__ = ("_h", "_done")

    def __init__(self, data: Any = None) -> None:
        self._h = host_hashlib.sha256()
        self._done = False
        if data is not None:
            self._h.update(_buffer(data))

    def update(self, data: Any) -> None:
        if self._done:
            raise ValueError("hash is final")   # the hardware engine cannot be resumed
        self._h.update(_buffer(data))

    def digest(self) -> bytes:
        self._done = True
        return self._h.digest()

    def calculate_hard(self, data: Any) -> bytes:
        return host_hashlib.sha256(_buffer(data)).digest()

    def __repr__(self) -> str:
        return "<sha256>"


def build(rt: "Runtime", name: str):
    return module(name, sha256=sha256)
