"""ustruct (also ``struct``): pack/unpack/calcsize/pack_into/unpack_from."""
from __future__ import annotations

import struct as host
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def _fmt(fmt: Any) -> str:
    if isinstance(fmt, (bytes, bytearray)):
        fmt = bytes(fmt).decode()
    if not isinstance(fmt, str):
        raise TypeError("format must be str")
    return fmt


def calcsize(fmt: Any) -> int:
    try:
        return host.calcsize(_fmt(fmt))
    except host.error:
        raise ValueError("bad typecode") from None


def pack(fmt: Any, *values: Any) -> bytes:
    try:
        return host.pack(_fmt(fmt), *values)
    except host.error as exc:
        raise ValueError("bad typecode" if "format" in str(exc) else str(exc)) from None


def unpack(fmt: Any, data: Any) -> tuple:
    try:
        return host.unpack(_fmt(fmt), bytes(memoryview(data)))
    except host.error:
        raise ValueError("buffer too small") from None


def unpack_from(fmt: Any, data: Any, offset: int = 0) -> tuple:
    try:
        return host.unpack_from(_fmt(fmt), bytes(memoryview(data)), int(offset))
    except host.error:
        raise ValueError("buffer too small") from None


def pack_into(fmt: Any, buf: Any, offset: int, *values: Any) -> None:
    try:
        host.pack_into(_fmt(fmt), buf, int(offset), *values)
    except host.error:
        raise ValueError("buffer too small") from None


def build(rt: "Runtime", name: str):
    return module(name, calcsize=calcsize, pack=pack, unpack=unpack, unpack_from=unpack_from,
                  pack_into=pack_into)
