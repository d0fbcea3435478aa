"""ubinascii (also ``binascii``): hexlify/unhexlify, base64, crc32 (MicroPython's forms)."""
from __future__ import annotations

import binascii as host
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def _buf(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError("object with buffer protocol required") from None


def hexlify(data: Any, sep: Any = None) -> bytes:
    raw = host.hexlify(_buf(data))
    if sep is None:
        return raw
    s = _buf(sep)
    return s.join(raw[i:i + 2] for i in range(0, len(raw), 2))


def unhexlify(data: Any) -> bytes:
    try:
        return host.unhexlify(_buf(data))
    except (host.Error, ValueError):
        raise ValueError("odd-length string" if len(_buf(data)) % 2 else "non-hex digit found") \
            from None


def a2b_base64(data: Any) -> bytes:
    try:
        return host.a2b_base64(_buf(data))
    except (host.Error, ValueError):
        raise ValueError("incorrect padding") from None


def b2a_base64(data: Any) -> bytes:
    return host.b2a_base64(_buf(data))


def crc32(data: Any, value: int = 0) -> int:
    return host.crc32(_buf(data), int(value)) & 0xFFFFFFFF


def build(rt: "Runtime", name: str):
    return module(name, hexlify=hexlify, unhexlify=unhexlify, a2b_base64=a2b_base64,
                  b2a_base64=b2a_base64, crc32=crc32)
