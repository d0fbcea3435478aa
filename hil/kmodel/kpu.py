"""K210 KPU conv layer structures: the 12 register words, the activation table, and body placement.

Register layout from the SDK's ``kpu_layer_argument_t`` (kpu.h): 12 u64 words, bit fields LSB first.
Body placement follows nncase 0.2's ``kpu_conv2d_options::serialize``: after the register words, the
batch-norm table aligned to 8, the activation table aligned to 256, the weights aligned to 128, and
the body padded to 8, all alignments measured from the start of the file. The v3 body is the same
with the SDK's ``kpu_model_conv_layer_argument_t`` {flags, main_mem_out_address, layer_offset,
weights_offset, bn_offset, act_offset} in front; its offsets are from the start of the file
(``ctx->model_buffer + arg->layer_offset`` in the SDK), pointing inside the layer's own body. nncase
0.1's exact v3 conv body order is not in the facts; reusing nncase 0.2's is the documented choice.

Values that the hardware only uses at run time (conv scaling arguments, activation segments) are
seeded; shapes, channel counts and sizes are consistent with the weights actually stored.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from hil.kmodel.filler import Rng

REGS = 96           # 12 x u64
ACT = 144           # 16 x u64 segments + 2 x 8 bias bytes
KPU_RAM_LINES = 32768   # 2 MiB of KPU RAM in 64-byte lines (image_src/dst_addr unit)


def align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def kernel_type(k: int) -> int:
    if k not in (1, 3):
        raise ValueError(f"KPU kernels are 1x1 or 3x3, not {k}x{k}")
    return 0 if k == 1 else 1


@dataclass(frozen=True)
class ConvGeom:
    ic: int             # input channels read (1..1024)
    oc: int             # output channels (1..1024)
    k: int              # 1 or 3
    s: int              # square feature map side, same padding, stride 1
    src: int            # KPU RAM line of the input map
    dst: int            # KPU RAM line of the output map
    main_out: bool      # also DMA the output to main memory (last layer of a branch)

    @property
    def weights(self) -> int:
        return self.ic * self.oc * self.k * self.k

    @property
    def bn(self) -> int:
        return 8 * self.oc


@dataclass(frozen=True)
class ConvPlace:
    """Absolute positions inside one conv body."""
    start: int
    regs: int
    bn: int
    act: int
    weights: int
    nat_end: int        # end of the weights: the body's real content
    end: int            # nat_end padded to 8: start + body_size


def place_conv(start: int, geom: ConvGeom, prefix: int, align_regs: bool) -> ConvPlace:
    regs = align(start + prefix, 8) if align_regs else start + prefix
    bn = align(regs + REGS, 8)
    act = align(bn + geom.bn, 256)
    wst = align(act + ACT, 128)
    nat = wst + geom.weights
    return ConvPlace(start, regs, bn, act, wst, nat, align(nat, 8))


def _row_params(s: int) -> tuple[int, int, int]:
    """(coef_group, row_switch_addr, channel_switch_addr) for an s x s map in 64-byte lines."""
    group = 4 if s <= 16 else 2 if s <= 32 else 1
    row_switch = (s + 63) // 64
    return group, row_switch, row_switch * ((s + group - 1) // group)


def map_lines(channels: int, s: int) -> int:
    return channels * _row_params(s)[2]


def layer_words(g: ConvGeom, rng: Rng, pads: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """The 12 register words. ``pads`` = (bwsx_base_addr, active_addr, para_start_addr): 0 in v3
    (the runtime patches them from the argument offsets), the alignment byte counts in v4."""
    kt = kernel_type(g.k)
    group, row_switch, ch_switch = _row_params(g.s)
    one_channel = g.ic * g.k * g.k
    per_load = max(1, min(g.oc, (30 * 1024) // one_channel))
    load_times = (g.oc + per_load - 1) // per_load
    s1 = g.s - 1
    words = [
        1,                                                           # interrupt_enabe: int_en
        (g.src & 0x7FFF) | (g.dst & 0x7FFF) << 32,                   # image_addr
        (g.ic - 1) | (g.oc - 1) << 32 | (g.oc - 1) << 48,            # image_channel_num
        s1 | s1 << 10 | s1 << 32 | s1 << 42,                         # image_size
        kt | 1 << 10 | 15 << 16 | (pads[0] & 0xFFFFFFFF) << 32,      # kernel_pool_type_cfg
        1 | ((load_times - 1) & 0x3F) << 1 | ((per_load * one_channel) & 0x1FFFF) << 15
        | (pads[2] & 0xFFFFFFFF) << 32,                              # kernel_load_cfg
        0,                                                           # kernel_offset
        (ch_switch & 0x7FFF) | (row_switch & 0xF) << 16 | (group & 0x7) << 28 | 1 << 31
        | (pads[1] & 0xFFFFFFFF) << 32,                              # kernel_calc_type_cfg
        (ch_switch & 0x7FFF) | (row_switch & 0xF) << 16 | (group & 0x7) << 20,  # write_back_cfg
        rng.bits(4) | rng.bits(4) << 4 | rng.bits(24) << 8 | rng.bits(24) << 32,  # conv_value
        rng.bits(40),                                                # conv_value2: arg_add
        int(g.main_out) | (g.s * g.s - 1) << 16 | (g.s * g.s * g.oc - 1) << 32,  # dma_parameter
    ]
    return struct.pack("<12Q", *words)


def act_table(rng: Rng) -> bytes:
    """16 ascending piecewise-linear segments {shift 8, y_mul 16, x_start 36} and 16 bias bytes."""
    x = 0x800000000                      # most negative 36-bit start
    segs = []
    for _ in range(16):
        segs.append(rng.bits(5) | rng.bits(16) << 8 | (x & 0xFFFFFFFFF) << 24)
        x += 1 + rng.bits(12)
    return struct.pack("<16Q", *segs) + bytes(rng.bits(8) for _ in range(16))


@dataclass(frozen=True)
class DecodedConv:
    ic: int
    oc: int
    k: int
    s: int
    depthwise: bool
    main_out: bool
    pads: tuple[int, int, int]

    @property
    def weights(self) -> int:
        return (self.oc if self.depthwise else self.ic * self.oc) * self.k * self.k


def decode_layer_words(words: bytes) -> DecodedConv:
    w = struct.unpack("<12Q", words[:REGS])
    kt = w[4] & 7
    return DecodedConv(ic=(w[2] & 0x3FF) + 1, oc=((w[2] >> 32) & 0x3FF) + 1,
                       k=1 if kt == 0 else 3 if kt == 1 else 0, s=(w[3] & 0x3FF) + 1,
                       depthwise=bool(w[0] >> 3 & 1), main_out=bool(w[11] & 1),
                       pads=(w[4] >> 32, w[7] >> 32, w[5] >> 32))
