"""The seeded byte patterns inside generated kmodels, cheap enough for MicroPython to reproduce.

Two generators, both from xorshift32 (Marsaglia), chosen because a few shifts and xors per word
run fast on the board and the host alike:

- ``Rng``: a per-layer stream for small structured values (register arguments, activation tables).
  These bytes are computed on the host only; the on-board writer receives them as literals.
- the *filler*: the background of the whole file, defined per absolute 4 KiB chunk ``c`` as
  ``u32le((c + key) & 0x3FFFFFFF) + block[4:]`` where ``block`` is 1024 xorshift32 words from
  ``state``. Weights and batch-norm tables are filler; every other byte is a literal laid over it.
  The per-chunk counter keeps any two chunks different (a misplaced chunk changes the sha256), and
  the writer only packs one word per 4 KiB, so 3 MiB take well under a second even in CPython.
"""
from __future__ import annotations

import struct

MASK32 = 0xFFFFFFFF
CHUNK = 4096
COUNTER_MASK = 0x3FFFFFFF    # keep the counter a MicroPython small int


def xorshift32(x: int) -> int:
    x ^= (x << 13) & MASK32
    x ^= x >> 17
    x ^= (x << 5) & MASK32
    return x


def mix(seed: int, salt: int) -> int:
    """A non-zero 32-bit state from (seed, salt), well spread even for small seeds."""
    x = (seed * 0x9E3779B1 + salt * 0x85EBCA77 + 0x2545F491) & MASK32
    for _ in range(3):
        x = xorshift32(x or 0x6D2B79F5)
    return x or 0x6D2B79F5


class Rng:
    """xorshift32 stream for one layer's small values."""

    def __init__(self, seed: int, salt: int) -> None:
        self.x = mix(seed, salt)

    def u32(self) -> int:
        self.x = xorshift32(self.x)
        return self.x

    def bits(self, n: int) -> int:
        return self.u32() & ((1 << n) - 1) if n <= 32 else (self.u32() << 32 | self.u32()) & ((1 << n) - 1)

    def below(self, n: int) -> int:
        return self.u32() % n


def filler_params(seed: int) -> tuple[int, int]:
    """(block state, counter key) of a model's filler; the on-board writer receives these."""
    return mix(seed, 0xF111), mix(seed, 0xC0DE) & COUNTER_MASK


def filler_block(state: int) -> bytes:
    words = []
    x = state
    for _ in range(CHUNK // 4):
        x = xorshift32(x)
        words.append(x)
    return struct.pack(f"<{len(words)}I", *words)


def filler(size: int, seed: int) -> bytearray:
    """The first ``size`` bytes of a model's filler background."""
    state, key = filler_params(seed)
    tail = filler_block(state)[4:]
    chunks = (size + CHUNK - 1) // CHUNK
    out = bytearray(b"".join(struct.pack("<I", (c + key) & COUNTER_MASK) + tail
                             for c in range(chunks)))
    del out[size:]
    return out
