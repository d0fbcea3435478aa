"""array: array.array with MicroPython's typecodes (the host's array type)."""
from __future__ import annotations

import array as host
from typing import TYPE_CHECKING

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def build(rt: "Runtime", name: str):
    return module(name, array=host.array)
