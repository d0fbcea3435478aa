"""urandom (also ``random``): getrandbits, seed, randint, randrange, choice, random, uniform."""
from __future__ import annotations

import random as host
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


def build(rt: "Runtime", name: str):
    rng = host.Random()

    def getrandbits(n: int) -> int:
        n = int(n)
        if not 1 <= n <= 32:
            raise ValueError("bits must be 32 or less")
        return rng.getrandbits(n)

    def seed(s: Any = None) -> None:
        rng.seed(s)

    def randrange(*args: int) -> int:
        return rng.randrange(*args)

    def randint(a: int, b: int) -> int:
        return rng.randint(int(a), int(b))

    def choice(seq: Any) -> Any:
        if not seq:
            raise IndexError("empty sequence")
        return rng.choice(seq)

    def random() -> float:
        return rng.random()

    def uniform(a: float, b: float) -> float:
        return rng.uniform(a, b)

    return module(name, getrandbits=getrandbits, seed=seed, randrange=randrange,
                  randint=randint, choice=choice, random=random, uniform=uniform)
