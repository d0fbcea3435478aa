"""Walk the layers of a v3/v4 kmodel and check the inside of its K210 conv bodies.

The loaders never look inside a body, so parse_kmodel does not either; this module is for humans
(``hil models info --layers``) and for the builder's own tests: every conv body's offsets must lie
inside the body and its weights must be exactly ic x oc x k x k bytes as its register words say.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from hil.errors import KModelFormatError
from hil.kmodel import kpu
from hil.kmodel.format import KL_K210_CONV, V3_HEADER, V4_HEADER, parse_kmodel

V3_NAMES = {
    0: "INVALID", 1: "ADD", 2: "QUANTIZED_ADD", 3: "GLOBAL_MAX_POOL2D",
    4: "QUANTIZED_GLOBAL_MAX_POOL2D", 5: "GLOBAL_AVERAGE_POOL2D",
    6: "QUANTIZED_GLOBAL_AVERAGE_POOL2D", 7: "MAX_POOL2D", 8: "QUANTIZED_MAX_POOL2D",
    9: "AVERAGE_POOL2D", 10: "QUANTIZED_AVERAGE_POOL2D", 11: "QUANTIZE", 12: "DEQUANTIZE",
    13: "REQUANTIZE", 14: "L2_NORMALIZATION", 15: "SOFTMAX", 16: "CONCAT", 17: "QUANTIZED_CONCAT",
    18: "FULLY_CONNECTED", 19: "QUANTIZED_FULLY_CONNECTED", 20: "TENSORFLOW_FLATTEN",
    21: "QUANTIZED_TENSORFLOW_FLATTEN", 22: "RESIZE_NEAREST_NEIGHBOR",
    23: "QUANTIZED_RESIZE_NEAREST_NEIGHBOR", 24: "CHANNELWISE_DEQUANTIZE", 25: "LOGISTIC",
    0x2800: "K210_CONV", 0x2801: "K210_ADD_PADDING", 0x2802: "K210_REMOVE_PADDING",
    0x2803: "K210_UPLOAD",
}
V4_NAMES = {
    0x00: "binary", 0x01: "concat", 0x02: "conv2d", 0x03: "dequantize", 0x04: "matmul",
    0x05: "pad", 0x06: "quantize", 0x07: "reduce", 0x08: "reduce_window2d", 0x09: "memory_copy",
    0x0A: "resize_image", 0x0B: "softmax", 0x0C: "transpose", 0x0D: "strided_slice",
    0x0E: "unary", 0x0F: "quantized_conv2d", 0x10: "quantized_matmul", 0x11: "quantized_binary",
    0x12: "table_lookup1d", 0x13: "conv2d_transpose", 0x14: "nnil_unary_method",
    0x2001: "kpu_upload", 0x2002: "kpu_conv2d",
}
OP_KPU_CONV2D = 0x2002


@dataclass(frozen=True)
class LayerInfo:
    index: int
    type: int
    name: str
    offset: int          # body start in the file
    body_size: int
    conv: kpu.DecodedConv | None = None

    def as_dict(self) -> dict:
        d = {"index": self.index, "type": self.type, "name": self.name, "offset": self.offset,
             "body_size": self.body_size}
        if self.conv is not None:
            c = self.conv
            d["conv"] = {"ic": c.ic, "oc": c.oc, "kernel": c.k, "side": c.s,
                         "weights": c.weights, "main_out": c.main_out}
        return d


def _bodies(data: bytes, source: str) -> tuple[int, list[tuple[int, int, int]]]:
    info = parse_kmodel(data, source)
    if info.version == 3:
        outputs, layers = struct.unpack_from("<I", data, 24)[0], info.layer_count
        table = V3_HEADER + 8 * outputs
    elif info.version == 4:
        inputs, constants = struct.unpack_from("<I", data, 28)[0], struct.unpack_from("<I", data, 16)[0]
        table = V4_HEADER + 32 * inputs + 16 * info.outputs + constants
        layers = info.layer_count
    else:
        return 5, []
    pos, out = table + 8 * layers, []
    for i in range(layers):
        typ, size = struct.unpack_from("<II", data, table + 8 * i)
        out.append((typ, pos, size))
        pos += size
    return info.version, out


def _conv_v3(data: bytes, i: int, start: int, size: int, source: str) -> kpu.DecodedConv:
    end = start + size
    _, _, regs, wst, bn, act = struct.unpack_from("<6I", data, start)
    def bad(field: str, problem: str) -> KModelFormatError:
        return KModelFormatError(source, start, f"layer[{i}].{field}", problem)
    if not start + 24 <= regs <= end - kpu.REGS:
        raise bad("layer_offset", f"{regs:#x} outside the body [{start:#x}, {end:#x})")
    conv = kpu.decode_layer_words(data[regs:regs + kpu.REGS])
    for name, off, length in (("bn_offset", bn, 8 * conv.oc), ("act_offset", act, kpu.ACT),
                              ("weights_offset", wst, conv.weights)):
        if not (start <= off and off + length <= end):
            raise bad(name, f"{length} bytes at {off:#x} leave the body [{start:#x}, {end:#x})")
    if wst + conv.weights > len(data):
        raise bad("weights_offset", f"weights end at {wst + conv.weights:#x}, past the file")
    if act % 256 or wst % 128:
        raise bad("act_offset", f"activation table at {act:#x} / weights at {wst:#x} misaligned")
    return conv


def _conv_v4(data: bytes, i: int, start: int, size: int, source: str) -> kpu.DecodedConv:
    regs = start + 24
    conv = kpu.decode_layer_words(data[regs:regs + kpu.REGS])
    bn = regs + kpu.REGS + conv.pads[0]
    act = bn + 8 * conv.oc + conv.pads[1]
    wst = act + kpu.ACT + conv.pads[2]
    if wst + conv.weights > min(start + size, len(data)):
        raise KModelFormatError(source, start, f"node[{i}].weights",
                                f"{conv.weights} weight bytes at {wst:#x} leave the body "
                                f"[{start:#x}, {start + size:#x})")
    return conv


def describe(data: bytes, source: str = "<bytes>") -> list[LayerInfo]:
    """Every layer/node with its body position; K210 convs decoded and checked (v5: [])."""
    version, bodies = _bodies(data, source)
    out = []
    for i, (typ, start, size) in enumerate(bodies):
        conv = None
        try:
            if version == 3 and typ == KL_K210_CONV:
                conv = _conv_v3(data, i, start, size, source)
            elif version == 4 and typ == OP_KPU_CONV2D:
                conv = _conv_v4(data, i, start, size, source)
        except (struct.error, IndexError) as exc:
            raise KModelFormatError(source, start, f"layer[{i}]",
                                    f"body of {size} bytes too short for a K210 conv ({exc})") from None
        names = V3_NAMES if version == 3 else V4_NAMES
        out.append(LayerInfo(i, typ, names.get(typ, f"unknown({typ:#x})"), start, size, conv))
    return out
