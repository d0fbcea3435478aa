"""The leading part of a kmodel v3 that MaixPy's loader interprets when it loads from flash.

That is the header, the output table, the layer headers (the loader sums their body sizes to know
how many bytes to allocate and read) and the first conv layer's argument struct with its register
words (MaixPy reads the input shape from them), rounded up to a flash sector.

ASSUMPTION: the loader takes the model's size from its header (the sum of the layer body sizes),
allocates it (and main_mem) from the system heap, and reads the bodies without interpreting them
except the first conv layer's arguments. So writing only the lead over ISP lets the allocation,
which decides the memory error, see the true size, and the bytes past the lead (whatever the
flash held) are never judged. This is what hil.kmodel.format validates (headers and tables only,
sizing a flash model with model_size_from_header). A loader that checked body contents at load
time would make a lead-only model fail with a format error instead of the memory error; the
memory-threshold suite fails saying so rather than reporting a wrong threshold.
"""
from __future__ import annotations

import struct

from hil.kmodel.format import header_bytes_needed
from hil.kmodel.kpu import REGS

SECTOR = 4096


def flash_lead(model: bytes, align: int = SECTOR) -> bytes:
    """The bytes of a v3 ``model`` to write at a flash offset for a load to size it truly."""
    tables = header_bytes_needed(model[:64])
    outputs = struct.unpack_from("<I", model, 24)[0]
    if len(model) < tables + 24:
        return model
    layer_offset = struct.unpack_from("<I", model, tables + 8)[0]   # kpu_model_conv_layer_argument_t
    end = max(tables + 24, layer_offset + REGS, 28 + 8 * outputs)
    end = -(-end // align) * align
    return model[:min(end, len(model))]
