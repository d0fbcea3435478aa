"""math: MicroPython's math module (MICROPY_PY_MATH_SPECIAL_FUNCTIONS on), from the host's."""
from __future__ import annotations

import math as host
from typing import TYPE_CHECKING

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime

NAMES = ("e pi inf nan acos acosh asin asinh atan atan2 atanh ceil copysign cos cosh degrees "
         "erf erfc exp expm1 fabs floor fmod frexp gamma isfinite isinf isnan ldexp lgamma log "
         "log10 log2 modf pow radians sin sinh sqrt tan tanh trunc").split()


def build(rt: "Runtime", name: str):
    return module(name, **{n: getattr(host, n) for n in NAMES})
