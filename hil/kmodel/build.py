"""Write kmodel v3/v4 files of an exact byte size, and broken variants for the load-error suite.

``build_v3(size, main_mem, seed, kernel)`` and ``build_v4(...)`` return exactly ``size`` bytes: a
model with real K210 conv layers (see hil/kmodel/layout.py for the structure) whose header says
``main_mem`` bytes of main memory. The same arguments always give the same bytes.

Smallest sizes: MIN_V3_SIZE = 513 bytes (one 1x1 conv with one input channel: 28 header + 8 output
+ 8 layer header, its argument, register words, batch-norm entry, 256-aligned activation table and
one weight byte at 512). MIN_V4_SIZE = 769 bytes (v4 header, tables and constants, a kpu_upload and
one 1x1 kpu_conv2d). Sizes up to MAX_SIZE (16 MiB) are possible. A model's head tensors need a
little main memory (at most ~5 KiB); ``main_mem`` >= 8192 always suffices, less may raise
ValueError naming the minimum for that size.
"""
from __future__ import annotations

import struct

from hil.kmodel import layout as _layout
from hil.kmodel.filler import Rng
from hil.kmodel.format import KL_K210_CONV, V3_HEADER

DEFAULT_MAIN_MEM = 64 * 1024
MIN_V3_SIZE = 513
MIN_V4_SIZE = 769
MAX_SIZE = _layout.MAX_SIZE
KL_FULLY_CONNECTED = 18


def build_v3(size: int, main_mem: int = DEFAULT_MAIN_MEM, seed: int = 0, kernel: int = 3) -> bytes:
    """A valid kmodel v3 of exactly ``size`` bytes (ValueError below MIN_V3_SIZE)."""
    return _layout.layout(3, size, main_mem, seed, kernel).data()


def build_v4(size: int, main_mem: int = DEFAULT_MAIN_MEM, seed: int = 0, kernel: int = 3) -> bytes:
    """A valid kmodel v4 (target k210) of exactly ``size`` bytes (ValueError below MIN_V4_SIZE)."""
    return _layout.layout(4, size, main_mem, seed, kernel).data()


def build_v5_stub(seed: int = 0) -> bytes:
    """A small structurally valid kmodel v5 (stackvm + k210 modules) made without nncase.

    Enough for 'MaixPy rejects v5' tests when nncase is not installed; the real v5 fixtures come
    from hil/kmodel/nncase.py.
    """
    rng = Rng(seed, 0x55)

    def module(name: bytes, data_pool: int, text: int) -> bytes:
        pools = struct.pack("<BxxxI", 2, 0) + struct.pack("<BxxxI", 3, data_pool)
        func = struct.pack("<8I", 32, 32 + 16, 16, 16, 1, 1, 0, text) + bytes(16)
        sect = b".text".ljust(16, b"\0") + struct.pack("<4I", 0, 0, text, 0)
        body = bytes(rng.bits(8) for _ in range(text))
        size = 48 + len(pools) + len(func) + len(sect) + len(body)
        head = name.ljust(16, b"\0") + struct.pack("<8I", 1, 48, size, 2, 0, 1, 1, 0)
        return head + pools + func + sect + body

    mods = module(b"stackvm", 256, 24) + module(b"k210", 1024, 40)
    return struct.pack("<4s7I", b"LDMK", 5, 32, 0, 8, 2, 0, 0) + mods


# ---------------------------------------------------------------------------------------------
# broken variants
def _set_u32(data: bytes, off: int, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into("<I", b, off, value & 0xFFFFFFFF)
    return bytes(b)


def _v3(seed: int, size: int = 4096) -> bytes:
    return build_v3(size, DEFAULT_MAIN_MEM, seed, 1)


def _v3_layers_at(data: bytes) -> int:
    return V3_HEADER + 8 * struct.unpack_from("<I", data, 24)[0]


def _random_bytes(seed: int) -> bytes:
    rng = Rng(seed, 0xBAD)
    data = bytearray(struct.pack("<1024I", *(rng.u32() for _ in range(1024))))
    if struct.unpack_from("<I", data)[0] == 3 or data[:4] == b"LDMK":
        data[0] ^= 0x80        # never a header by accident
    return bytes(data)


def _first_layer_not_conv(seed: int) -> bytes:
    data = _v3(seed)
    lh = _v3_layers_at(data)
    assert struct.unpack_from("<I", data, lh)[0] == KL_K210_CONV
    return _set_u32(data, lh, KL_FULLY_CONNECTED)   # like nncase 0.1's iris sample


def _body(seed: int, value: int) -> bytes:
    data = _v3(seed)
    return _set_u32(data, _v3_layers_at(data) + 4, value)


BROKEN_MAKERS = {
    "empty": lambda seed: b"",
    "short_header": lambda seed: _v3(seed)[:8],
    "truncated": lambda seed: _v3(seed)[:2048],
    "truncated_in_tables": lambda seed: _v3(seed)[:40],
    "v4_truncated": lambda seed: build_v4(4096, DEFAULT_MAIN_MEM, seed, 1)[:2048],
    "bad_version": lambda seed: _set_u32(_v3(seed), 0, 2),
    "v3_arch_nonzero": lambda seed: _set_u32(_v3(seed), 8, 1),
    "v4_bad_version": lambda seed: _set_u32(build_v4(4096, DEFAULT_MAIN_MEM, seed, 1), 4, 6),
    "v4_wrong_target": lambda seed: _set_u32(build_v4(4096, DEFAULT_MAIN_MEM, seed, 1), 12, 2),
    "body_past_end": lambda seed: _set_u32(_v3(seed), _v3_layers_at(_v3(seed)) + 4, 0x10000),
    "body_size_zero": lambda seed: _body(seed, 0),
    "body_size_negative": lambda seed: _body(seed, 0xFFFFFF00),
    "zero_layers": lambda seed: _set_u32(_v3(seed), 12, 0),
    "huge_layer_count": lambda seed: _set_u32(_v3(seed), 12, 0xFFFFFFFF),
    "first_layer_not_conv": _first_layer_not_conv,
    "random_bytes": _random_bytes,
    "erased_flash": lambda seed: b"\xff" * 4096,
    "v5_model": build_v5_stub,
}
BROKEN_KINDS: tuple[str, ...] = tuple(BROKEN_MAKERS)

# What MaixPy (a build loading v3 and v4) raises for each kind: a hil.firmware.ErrorTexts key.
# The reasoning, and which of these are UNCONFIRMED, is in hil/kmodel/verdict.py.
EXPECTED_ERROR: dict[str, str] = {
    "empty": "version",
    "short_header": "version",
    "truncated": "read_file",
    "truncated_in_tables": "read_file",
    "v4_truncated": "read_file",
    "bad_version": "version",
    "v3_arch_nonzero": "version",
    "v4_bad_version": "version",
    "v4_wrong_target": "version",
    "body_past_end": "read_file",
    "body_size_zero": "body_size",
    "body_size_negative": "body_size",
    "zero_layers": "body_size",          # UNCONFIRMED
    "huge_layer_count": "read_file",
    "first_layer_not_conv": "first_layer",
    "random_bytes": "version",
    "erased_flash": "version",
    "v5_model": "version",
}

# Kinds that parse_kmodel accepts (the defect is a flag or a firmware limitation, not a format error)
PARSES_OK = frozenset({"first_layer_not_conv", "v5_model"})


def broken(kind: str, seed: int = 0) -> bytes:
    """A deterministic broken (or, for MaixPy, unloadable) model of the given kind."""
    try:
        maker = BROKEN_MAKERS[kind]
    except KeyError:
        raise ValueError(f"unknown broken kind {kind!r} (known: {', '.join(BROKEN_KINDS)})") from None
    return maker(seed)
