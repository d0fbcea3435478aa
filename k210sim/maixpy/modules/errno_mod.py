"""uerrno (also ``errno``): MicroPython's default errno list and ``errorcode``."""
from __future__ import annotations

from typing import TYPE_CHECKING

from k210sim.maixpy.modules import module
from k210sim.maixpy.mperrors import MP_ERRNO_NAMES

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def build(rt: "Runtime", name: str):
    attrs = {n: code for code, n in MP_ERRNO_NAMES.items()}
    return module(name, errorcode=dict(MP_ERRNO_NAMES), **attrs)
