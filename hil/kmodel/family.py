"""The kmodel family hil.kmodel.layout lays out: its shape knobs, its layers, and where the maps
sit in main memory (the model family itself is described in hil/kmodel/layout.py)."""
from __future__ import annotations

from dataclasses import dataclass

from hil.kmodel.kpu import ConvGeom, align

MAX_SIZE = 16 * 1024 * 1024          # the K210 boards' flash; nothing larger can load anyway
KL_DEQUANTIZE, KL_GLOBAL_AVERAGE_POOL2D, KL_FULLY_CONNECTED = 12, 5, 18
OP_CONV2D, OP_DEQUANTIZE, OP_REDUCE = 0x02, 0x03, 0x07
OP_KPU_UPLOAD, OP_KPU_CONV2D = 0x2001, 0x2002
MEM_MAIN, MEM_KPU = 1, 2
DT_F32, DT_U8 = 0, 1
M_MAX = 1024                         # classifier outputs
T_MAX_TINY = 1024                    # tiny T reads up to 1024 input channels
MAX_SIDE = 16                        # feature map side, chosen from main_mem
BUF_IN, BUF_A, BUF_B, BUF_H = 0, 8192, 16384, 24576   # KPU RAM lines of the maps
V4_CONSTANTS = 32
FLT_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Shape:
    version: int
    kernel: int
    nb: int | None       # None: tiny; -1: heads only; 0: G on the input; >= 1: F + bulk + G
    g: int = 1
    m: int = 1
    t: int = 1
    side: int = 1

    @property
    def channels(self) -> tuple[int, int]:
        """(C, C'): bulk channels and G's output channels."""
        c = 256 if self.kernel == 3 else 512
        if self.nb == 0:
            return c, 256
        return c, min(2 * c, 1024)

    @property
    def t_max(self) -> int:
        return T_MAX_TINY if self.nb is None or self.nb < 0 else self.channels[1]

    @property
    def g_max(self) -> int:
        return 1 if self.nb == -1 else 1024 if self.nb == 0 else self.channels[0]

    @property
    def in_channels(self) -> int:
        if self.nb is None or self.nb < 0:
            return self.t
        return self.g if self.nb == 0 else 3


class Emitter:
    """Appends literals and filler ranges at absolute positions (measure=True: positions only)."""

    def __init__(self, start: int, measure: bool) -> None:
        self.pos = start
        self.measure = measure
        self.lits: list[tuple[int, bytes]] = []

    def put(self, data: bytes) -> None:
        if not self.measure and data:
            if self.lits and self.lits[-1][0] + len(self.lits[-1][1]) == self.pos:
                off, prev = self.lits.pop()
                self.lits.append((off, prev + data))
            else:
                self.lits.append((self.pos, data))
        self.pos += len(data)

    def zeros_to(self, target: int) -> None:
        if self.measure:
            self.pos = target
        else:
            self.put(bytes(target - self.pos))

    def fill(self, n: int) -> None:
        self.pos += n


# ---------------------------------------------------------------------------------------------
# the layer list
@dataclass(frozen=True)
class Layer:
    kind: str               # "conv", "deq", "gap", "fc" (v3 names; v4 maps them to nodes)
    geom: ConvGeom | None = None
    final: bool = False


def _convs(sh: Shape) -> list[ConvGeom]:
    s, k = sh.side, sh.kernel
    if sh.nb is None:
        return [ConvGeom(sh.t, 1, 1, s, BUF_IN, BUF_A, True)]
    if sh.nb < 0:
        return [ConvGeom(1, 1, 1, s, BUF_IN, BUF_H, True), ConvGeom(sh.t, 1, 1, s, BUF_IN, BUF_H, True)]
    c, c2 = sh.channels
    convs: list[ConvGeom] = []
    src = BUF_IN
    if sh.nb >= 1:
        convs.append(ConvGeom(3, c, k, s, BUF_IN, BUF_A, False))
        src = BUF_A
        for _ in range(sh.nb - 1):
            dst = BUF_B if src == BUF_A else BUF_A
            convs.append(ConvGeom(c, c, k, s, src, dst, False))
            src = dst
    gdst = BUF_B if src == BUF_A else BUF_A
    convs.append(ConvGeom(sh.g, c2, k, s, src, gdst, False))
    convs.append(ConvGeom(1, 1, 1, s, gdst, BUF_H, True))          # P
    convs.append(ConvGeom(sh.t, 1, 1, s, gdst, BUF_H, True))       # T
    return convs


def layers(sh: Shape) -> list[Layer]:
    convs = _convs(sh)
    if sh.nb is None:
        return [Layer("conv", convs[0], final=True)]
    out = [Layer("conv", g) for g in convs[:-1]]
    out += [Layer("deq"), Layer("gap"), Layer("fc"), Layer("conv", convs[-1], final=True)]
    return out


@dataclass(frozen=True)
class MainMem:
    """Main-memory addresses of the head tensors and the bytes they need."""
    p_out: int
    deq_out: int
    gap_out: int
    fc_out: int
    t_out: int
    need: int


def main_mem_map(sh: Shape, side: int) -> MainMem:
    area = side * side
    if sh.version == 3:
        if sh.nb is None:
            return MainMem(0, 0, 0, 0, 0, area)
        p, d = 0, align(area, 4)
        gp = d + 4 * area
        fc = gp + 4
        t = fc + 4 * sh.m
        return MainMem(p, d, gp, fc, t, t + area)
    inp = align(sh.in_channels * area, 8)     # the uploaded input sits at 0
    if sh.nb is None:
        return MainMem(0, 0, 0, 0, inp, inp + area)
    d = align(inp + area, 8)
    gp = d + 4 * area
    fc = align(gp + 4, 8)
    t = fc + 4 * sh.m
    return MainMem(inp, d, gp, fc, t, t + area)
