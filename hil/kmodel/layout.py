"""Lay out a v3 or v4 kmodel of an exact byte size: which layers, where every byte goes.

The model family (every variant starts with a K210 conv in v3, with kpu_upload in v4, as nncase
emits them):

    tiny     T                                         (T reads t channels of the input)
    nb = -1  P, dequantize, global-mean, FC, T         (heads only, on the input)
    nb = 0   G, P, dequantize, global-mean, FC, T      (G reads g channels of the input)
    nb >= 1  F, B x (nb-1), G, P, dequantize, global-mean, FC, T

F: 3 -> C conv; B: C -> C conv (the bulk of a big model); G: g -> C' conv reading the first g
channels of the map before it; P: 1x1 head, 1 channel of G's map -> main memory; then a float
classifier on P's scalar (v3: KL_DEQUANTIZE, KL_GLOBAL_AVERAGE_POOL2D, KL_FULLY_CONNECTED 1 -> m;
v4: dequantize, reduce(mean), conv2d 1x1 1 -> m); T: 1x1 head reading the first t channels of G's
map, oc 1, -> main memory. F, B and G use the requested kernel (1x1 or 3x3); P and T are 1x1.

Exact size: the file ends at the end of T's weights (t bytes after a 256-aligned start); T's
body_size is padded to 8 by seeking, like nncase, so the header math may exceed the file by up to 7
bytes. Coarse to fine, each knob's range covers the step of the one before: nb (a bulk layer,
~590 KiB at 3x3), g (step C' * k^2 <= 4.6 KiB), m (step 8 bytes, range 8 KiB; moves T's start, so
T's 256-aligned weights by 256), t (1..C' >= 256 bytes). ``solve`` picks each greedily.

Weights, batch-norm tables and float weights are the seeded filler (hil/kmodel/filler.py); all other
bytes (headers, arguments, register words, activation tables, padding) are literals laid over it,
which is what lets the on-board writer rebuild the file from a short list of literals.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Any

from hil.kmodel import kpu
from hil.kmodel.filler import Rng, filler
from hil.kmodel.format import KMDL, KL_K210_CONV
from hil.kmodel.kpu import ConvGeom, align, place_conv
from hil.kmodel.family import (  # noqa: F401 (MAX_SIZE and the constants are part of this module's API)
    MAX_SIZE,
    KL_DEQUANTIZE,
    KL_GLOBAL_AVERAGE_POOL2D,
    KL_FULLY_CONNECTED,
    OP_CONV2D,
    OP_DEQUANTIZE,
    OP_REDUCE,
    OP_KPU_UPLOAD,
    OP_KPU_CONV2D,
    MEM_MAIN,
    MEM_KPU,
    DT_F32,
    DT_U8,
    M_MAX,
    MAX_SIDE,
    V4_CONSTANTS,
    FLT_MAX,
    Shape,
    Emitter,
    layers,
    MainMem,
    main_mem_map)


def _emit_layers(e: Emitter, lay: list, sh: Shape, mm: MainMem, seed: int, first: int,
                 conv: tuple[int, Any], cpu: Any) -> list[tuple[int, int]]:
    """Every layer's body in order; their (type or opcode, body size) for the headers. ``conv``:
    (the conv's type, its emitter); ``cpu``: the emitter of the other layers."""
    heads: list[tuple[int, int]] = []
    for i, layer in enumerate(lay, start=first):
        if layer.kind == "conv":
            assert layer.geom is not None
            out = mm.t_out if layer.final else mm.p_out
            heads.append((conv[0], conv[1](e, layer.geom, seed, i, out, layer.final)))
        else:
            heads.append(cpu(e, layer.kind, sh, mm, seed, i))
    return heads


# ---------------------------------------------------------------------------------------------
# v3 emission
def _conv_tables(e: Emitter, g: ConvGeom, pl: kpu.ConvPlace, rng: Rng, final: bool) -> int:
    """The tail of a conv body in both versions: BN table, activation table and weights at the
    places place_conv chose (zero padding between them); the body's size."""
    e.zeros_to(pl.bn)
    e.fill(g.bn)
    e.zeros_to(pl.act)
    e.put(kpu.act_table(rng))
    e.zeros_to(pl.weights)
    e.fill(g.weights)
    if not final:
        e.zeros_to(pl.end)
    return pl.end - pl.start


def _conv(e: Emitter, g: ConvGeom, seed: int, idx: int, final: bool, align_regs: bool,
          prefix: Any, words: Any) -> int:
    """A conv body in both versions: ``prefix(place)`` (the 24 bytes before the register words),
    ``words(place, rng)`` (the register words), then the tables; the body's size."""
    pl = place_conv(e.pos, g, 24, align_regs=align_regs)
    if e.measure:
        e.pos = pl.nat_end if final else pl.end
        return pl.end - pl.start
    rng = Rng(seed, idx)
    e.put(prefix(pl))
    e.zeros_to(pl.regs)
    e.put(words(pl, rng))
    return _conv_tables(e, g, pl, rng, final)


def _v3_conv(e: Emitter, g: ConvGeom, rng_seed: int, idx: int, out_addr: int, final: bool) -> int:
    return _conv(e, g, rng_seed, idx, final, True,
                 lambda pl: struct.pack("<6I", int(g.main_out), out_addr if g.main_out else 0,
                                        pl.regs, pl.weights, pl.bn, pl.act),
                 lambda pl, rng: kpu.layer_words(g, rng))


def _cpu(e: Emitter, kind: str, sh: Shape, mm: MainMem, seed: int, idx: int, args: Any) -> tuple[int, int]:
    """A CPU layer (dequantize, global mean, the classifier): its arguments (``args(kind, sh, mm,
    scale) -> (type, bytes)``, per version), the classifier's float weights, padding to 8."""
    start = e.pos
    scale = (1 + Rng(seed, idx).below(1000)) / 4096.0
    typ, body = args(kind, sh, mm, scale)
    e.put(body)
    if kind == "fc":
        e.fill(8 * sh.m)                      # m float weights, then m float biases
    e.zeros_to(align(e.pos, 8))
    return typ, e.pos - start


def _v3_args(kind: str, sh: Shape, mm: MainMem, scale: float) -> tuple[int, bytes]:
    area = sh.side * sh.side
    if kind == "deq":
        return KL_DEQUANTIZE, struct.pack("<4Iff", 0, mm.p_out, mm.deq_out, area, scale, -scale * 128)
    if kind == "gap":
        return KL_GLOBAL_AVERAGE_POOL2D, struct.pack("<5I", 0, mm.deq_out, mm.gap_out, area, 1)
    return KL_FULLY_CONNECTED, struct.pack("<6I", 0, mm.gap_out, mm.fc_out, 1, sh.m, 0)


def _v3_cpu(e: Emitter, kind: str, sh: Shape, mm: MainMem, seed: int, idx: int) -> tuple[int, int]:
    return _cpu(e, kind, sh, mm, seed, idx, _v3_args)


def emit_v3(sh: Shape, main_mem: int, seed: int, measure: bool) -> Emitter:
    lay = layers(sh)
    mm = main_mem_map(sh, sh.side)
    outputs = [(mm.t_out, sh.side ** 2)] if sh.nb is None else \
        [(mm.fc_out, 4 * sh.m), (mm.t_out, sh.side ** 2)]
    e = Emitter(28 + 8 * len(outputs) + 8 * len(lay), measure)
    heads = _emit_layers(e, lay, sh, mm, seed, 0, (KL_K210_CONV, _v3_conv), _v3_cpu)
    if not measure:
        convs = [l.geom for l in lay if l.geom is not None]
        top = max(c.dst + kpu.map_lines(c.oc, c.s) for c in convs)
        head = struct.pack("<7I", 3, 1, 0, len(lay), top, main_mem, len(outputs))
        head += b"".join(struct.pack("<II", a, n) for a, n in outputs)
        head += b"".join(struct.pack("<II", t, n) for t, n in heads)
        e.lits.insert(0, (0, head))
    return e


# ---------------------------------------------------------------------------------------------
# v4 emission
def _mr(kind: int, dt: int, start: int, size: int) -> bytes:
    return struct.pack("<4I", kind, dt, start, size)


def _v4_conv(e: Emitter, g: ConvGeom, seed: int, idx: int, out_addr: int, final: bool) -> int:
    def words(pl: kpu.ConvPlace, rng: Rng) -> bytes:
        pads = (pl.bn - (pl.regs + kpu.REGS), pl.act - (pl.bn + g.bn), pl.weights - (pl.act + kpu.ACT))
        return kpu.layer_words(g, rng, pads)
    mr = _mr(MEM_MAIN, DT_U8, out_addr, g.s * g.s) if g.main_out else bytes(16)
    return _conv(e, g, seed, idx, final, False, lambda pl: mr + struct.pack("<ii", 1, 0), words)


def _v4_args(kind: str, sh: Shape, mm: MainMem, scale: float) -> tuple[int, bytes]:
    s, area = sh.side, sh.side * sh.side
    if kind == "deq":
        return OP_DEQUANTIZE, (_mr(MEM_MAIN, DT_U8, mm.p_out, area) + _mr(MEM_MAIN, DT_F32, mm.deq_out, 4 * area)
                               + struct.pack("<if", 128, scale))
    if kind == "gap":
        return OP_REDUCE, (_mr(MEM_MAIN, DT_F32, mm.deq_out, 4 * area) + _mr(MEM_MAIN, DT_F32, mm.gap_out, 4)
                           + struct.pack("<I4i4if", 0, 1, 1, s, s, 1, 1, 1, 1, 0.0))
    return OP_CONV2D, (_mr(MEM_MAIN, DT_F32, mm.gap_out, 4) + _mr(MEM_MAIN, DT_F32, mm.fc_out, 4 * sh.m)
                       + struct.pack("<4iii4i6iff", 1, 1, 1, 1, 1, sh.m, 0, 0, 0, 0,
                                     1, 1, 1, 1, 1, 1, -FLT_MAX, FLT_MAX))


def _v4_cpu(e: Emitter, kind: str, sh: Shape, mm: MainMem, seed: int, idx: int) -> tuple[int, int]:
    return _cpu(e, kind, sh, mm, seed, idx, _v4_args)


def emit_v4(sh: Shape, main_mem: int, seed: int, measure: bool) -> Emitter:
    lay = layers(sh)
    mm = main_mem_map(sh, sh.side)
    s, area = sh.side, sh.side * sh.side
    outputs = [_mr(MEM_MAIN, DT_U8, mm.t_out, area)] if sh.nb is None else \
        [_mr(MEM_MAIN, DT_F32, mm.fc_out, 4 * sh.m), _mr(MEM_MAIN, DT_U8, mm.t_out, area)]
    nodes = 1 + len(lay)
    tables = 40 + 32 + 16 * len(outputs) + V4_CONSTANTS
    e = Emitter(tables + 8 * nodes, measure)
    ic = sh.in_channels
    e.put(_mr(MEM_MAIN, DT_U8, 0, ic * area) + _mr(MEM_KPU, DT_U8, 0, 64 * kpu.map_lines(ic, s))
          + struct.pack("<4i", 1, ic, s, s))
    heads = [(OP_KPU_UPLOAD, 48)] + _emit_layers(e, lay, sh, mm, seed, 1, (OP_KPU_CONV2D, _v4_conv), _v4_cpu)
    if not measure:
        rng = Rng(seed, 0xC057)
        head = struct.pack("<4s9I", b"LDMK", 4, 0, 1, V4_CONSTANTS, main_mem, nodes, 1,
                           len(outputs), 0)
        assert struct.unpack_from("<I", head)[0] == KMDL
        head += _mr(MEM_MAIN, DT_U8, 0, ic * area) + struct.pack("<4i", 1, ic, s, s)
        head += b"".join(outputs)
        head += bytes(rng.bits(8) for _ in range(V4_CONSTANTS))
        head += b"".join(struct.pack("<II", op, n) for op, n in heads)
        e.lits.insert(0, (0, head))
    return e


# ---------------------------------------------------------------------------------------------
# solving for an exact size
def _emit(sh: Shape, main_mem: int, seed: int, measure: bool) -> Emitter:
    return (emit_v3 if sh.version == 3 else emit_v4)(sh, main_mem, seed, measure)


def _weights_start(sh: Shape) -> int:
    """Absolute start of T's weights (the file ends t bytes later)."""
    return _emit(replace(sh, t=1), 0, 0, True).pos - 1


def _largest(lo: int, hi: int, ok) -> int:
    """Largest v in [lo, hi] with ok(v), given ok is monotone (true then false) and ok(lo)."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def min_size(version: int) -> int:
    return _weights_start(Shape(version, 3, None)) + 1


def solve(version: int, size: int, kernel: int = 3) -> Shape:
    """The structure whose file is exactly ``size`` bytes (ValueError when none can be)."""
    if version not in (3, 4):
        raise ValueError(f"can only build kmodel v3 or v4, not v{version}")
    kpu.kernel_type(kernel)
    lowest = min_size(version)
    if size < lowest:
        raise ValueError(f"a kmodel v{version} is at least {lowest} bytes; {size} was asked for")
    if size > MAX_SIZE:
        raise ValueError(f"{size} bytes is more than {MAX_SIZE} (the boards' flash)")
    tiny = Shape(version, kernel, None)
    t = size - _weights_start(tiny)
    if t <= tiny.t_max:
        return replace(tiny, t=t)

    def fits(sh: Shape) -> bool:
        return _weights_start(sh) + 1 <= size

    nb = -1
    while fits(Shape(version, kernel, nb + 1)):
        nb += 1
    base = Shape(version, kernel, nb)
    if not fits(base):
        raise ValueError(f"no v{version} layout of {size} bytes (between the tiny and full "
                         f"families); this is a bug in hil/kmodel/layout.py")
    g = _largest(1, base.g_max, lambda v: fits(replace(base, g=v)))
    base = replace(base, g=g)
    m = _largest(1, M_MAX, lambda v: fits(replace(base, m=v)))
    base = replace(base, m=m)
    t = size - _weights_start(base)
    if not 1 <= t <= base.t_max:
        raise ValueError(f"no v{version} layout of {size} bytes (nb={nb} g={g} m={m} leaves "
                         f"t={t}); this is a bug in hil/kmodel/layout.py")
    return replace(base, t=t)


def choose_side(sh: Shape, main_mem: int) -> Shape:
    """The largest feature-map side whose head tensors fit ``main_mem``."""
    need = main_mem_map(sh, 1).need
    if main_mem < need:
        raise ValueError(f"main_mem {main_mem} is too small for this model: its head tensors "
                         f"need at least {need} bytes (8192 always suffices)")
    side = _largest(1, MAX_SIDE, lambda v: main_mem_map(sh, v).need <= main_mem)
    return replace(sh, side=side)


@dataclass(frozen=True)
class Layout:
    """A solved model: its shape, literal pieces and filler seed; ``data()`` renders the bytes."""
    shape: Shape
    size: int
    main_mem: int
    seed: int
    lits: tuple[tuple[int, bytes], ...]

    def data(self) -> bytes:
        out = filler(self.size, self.seed)
        for off, lit in self.lits:
            end = min(off + len(lit), self.size)
            if end > off:
                out[off:end] = lit[:end - off]
        return bytes(out)


def layout(version: int, size: int, main_mem: int, seed: int, kernel: int = 3) -> Layout:
    if main_mem < 0 or main_mem > 0xFFFFFFFF:
        raise ValueError(f"main_mem {main_mem} is not a u32")
    sh = choose_side(solve(version, size, kernel), main_mem)
    e = _emit(sh, main_mem, seed, False)
    assert e.pos == size, (e.pos, size)
    return Layout(sh, size, main_mem, seed, tuple(e.lits))
