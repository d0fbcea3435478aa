"""``sipeed_kpu_model_load`` and ``sipeed_kpu_model_load_flash``: the closed kmodel loaders.

Read from sipeed/MaixPy-v1@973361c0d components/kendryte_sdk/libs/, member sipeed_kpu.o, by
disassembly (``llvm-objdump -dr --triple=riscv64``). Offsets below are in ``.text.ZmVlbGluZw``
(the body of sipeed_kpu_model_load) of lib_sipeed_kpu_v4.a ("v4") or lib_sipeed_kpu.a ("v3lib");
the slot helpers YSUyMGJpcmQ / aW4lMjB0aGUlMjBza3k are XOR-0x57 obfuscated in the object and were
read after undoing that. Every decision below names its offset; the order is the firmware's.

File path (v4 0x2c-0x4e, 0x2da-0x3f6, 0x3fa-0x6e4, 0x792-0x7c6):
 1. ``*ctx = malloc(1)`` (the slot key; NULL -> 2006), then slots 0..4 scanned; all used -> the key
    is freed and 2009 comes back before the file is touched.
 2. vfs_internal_open(path, "rb") fails, or vfs_internal_size() <= 0, or the 8-byte header read
    does not return 8 bytes -> 2005 (a missing file, no SD card, an empty or 1-7 byte file).
 3. get_model_type(first u32): 3 -> 3, 10003 -> -3, 'KMDL' -> 4, 'SMDL' -> -4, 'EMDL' -> 100,
    else 0 -> 2002. Negative types and 100 take their size from the header's second u32.
 4. size - 1 >= 6 MiB (unsigned) -> 2003; encrypted sizes not a multiple of 16 -> 2003.
    v3lib only (0x35c-0x36c): |type| != 3 -> 2002 here, so a v4 file never reaches a malloc.
 5. malloc(size + 256) then malloc(192) -> 2006; the file is read whole into the buffer (the
    read's byte count is not checked), closed.
 6. Encrypted types print "encrypted model\\r\\n" and decrypt with the chip's key; the simulator
    has none, so they fail with 2004 (EMDL's sub-header with 2015): UNCONFIRMED for a model
    encrypted for the board.
 7. First u32 == 3: arch (u32 at 8) != 0 -> 2002; malloc(main_mem_usage) -> 2006; the body sizes
    of all layer headers are summed (no check at all) and the bodies copied to their uncached
    alias and compared. Nothing else is checked: truncated files, zero layers, body_size 0 load.
 8. 'KMDL' (v4 library only): nncase_load_kmodel (libnncase.a nncase.cpp.o): new context (288 B,
    NULL -> -1 -> 2006), then nncase_context::load_kmodel ignores try_load_model's result
    (interpreter.cpp.o: false for version != 4, target > 1, or main_mem that new[] cannot get)
    and reads the model's input shapes through the pointer try_load_model did not set: a load
    fault at address 4. So a v5 file, or a v4 with a bad version/target, faults the board.
 9. Any error: the file is closed and the slot destroyed (d2FpdGluZyUyMGZvcg): everything
    allocated is freed and ``*ctx`` is NULL again.

Memory the loader reads beyond the file (a file shorter than its header says) is the leftover
content of the heap, modelled as zeros (UNCONFIRMED: it is whatever the RAM held); reads past the
end of SRAM (0x80800000) are load faults.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

from k210sim.firmware.errors import CpuFault
from k210sim.firmware.newlib import NewlibHeap

MODEL_SLOTS = 5
MAX_MODEL = 6 * 1024 * 1024          # lui a4,1536 (0x600000) at 0x350 / 0x21e
RAM_START = 0x80000000
RAM_END = 0x80800000                 # 6 MiB general + 2 MiB AI SRAM, cached alias
KMDL, SMDL, EMDL = 0x4B4D444C, 0x534D444C, 0x454D444C
V3, V3_ENC = 3, 10003
KL_K210_CONV = 0x2800
NNCASE_CONTEXT = 288                 # operator new(288, nothrow) in nncase_load_kmodel
CTX192 = 192


def model_type(word: int) -> int:
    """get_model_type (sipeed_kpu.o .text.get_model_type)."""
    return {V3: 3, V3_ENC: -3, KMDL: 4, SMDL: -4, EMDL: 100}.get(word, 0)


def u32(data: bytes, off: int) -> int:
    """A little-endian u32 of ``data`` at ``off``; bytes past the end read as 0."""
    if off < 0 or off >= len(data):
        return 0
    return int.from_bytes((data[off:off + 4] + bytes(4))[:4], "little")


@dataclass
class Model:
    """One loaded model: what the 152-byte slot and the 192-byte context hold."""
    key: int                          # *ctx: the malloc(1) pointer
    slot: int
    type: int                         # slot->type (3, 4, or negative when encrypted)
    size: int                         # *size: what kpu_net.model_size() reports
    buf_ptr: int | None = None        # malloc(size + 256)
    buf_addr: int = 0                 # aligned buffer the model sits in
    ctx_ptr: int | None = None        # malloc(192)
    frees: list[int] = field(default_factory=list)   # more pointers the context owns
    data: bytes = b""                 # the model bytes as read
    layers: int = 0                   # v3 layers_length / v4 nodes
    outputs: list[tuple[int, int]] = field(default_factory=list)  # v3 (address, size)
    v4_output_sizes: list[int] = field(default_factory=list)
    shapes: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # v4 set_outputs
    main_mem: int = 0
    layer_types: list[int] = field(default_factory=list)
    leak_ptr: int | None = None       # a regressed build's allocation that deinit forgets


class Loader:
    """The closed loader of one library ("v4" or "v3") over one board's heap and storage."""

    def __init__(self, library: str, heap: NewlibHeap, read_file: Callable[[str], bytes | None],
                 flash_read: Callable[[int, int], bytes], print_cooked: Callable[[str], None],
                 leak: int = 0) -> None:
        self.library = library
        self.heap = heap
        self.read_file = read_file          # whole file, or None when vfs_internal_open fails
        self.flash_read = flash_read        # 24-bit addresses, wraps like the flash chip
        self.print = print_cooked           # mp_printf(&mp_plat_print, ...)
        self.leak = leak
        self.slots: list[Model | None] = [None] * MODEL_SLOTS
        self.by_key: dict[int, Model] = {}

    # -- slots (YSUyMGJpcmQ, aW4lMjB0aGUlMjBza3k, d2FpdGluZyUyMGZvcg) -------------------------
    def _claim(self) -> int | None:
        for i in range(MODEL_SLOTS):
            if self.slots[i] is None:
                return i
        return None

    def lookup(self, key: int) -> Model | None:
        return self.by_key.get(key) if key else None

    def destroy(self, key: int, failed_load: bool = False) -> None:
        """d2FpdGluZyUyMGZvcg: free the buffer, the context and what it owns, the slot, the key.

        A regressed build's leak (its ``leak_ptr``) is what deinit forgets; a failed load frees it."""
        model = self.by_key.pop(key, None)
        if model is None:
            return
        if failed_load:
            self.heap.free(model.leak_ptr)
        self.heap.free(model.buf_ptr)
        for ptr in model.frees:
            self.heap.free(ptr)
        self.heap.free(model.ctx_ptr)
        self.slots[model.slot] = None
        self.heap.free(model.key)

    # -- sipeed_kpu_model_load --------------------------------------------------------------------
    def load(self, flash_addr: int, path: str | None) -> tuple[int, int, int]:
        """(err, ctx key or 0, model size). Raises CpuFault where the board faults."""
        key = self.heap.malloc(1)
        if key is None:
            return 2006, 0, 0
        slot = self._claim()
        if slot is None:
            self.heap.free(key)
            return 2009, 0, 0
        model = Model(key=key, slot=slot, type=0, size=0)
        self.slots[slot] = model
        self.by_key[key] = model
        if self.leak:
            # the regressed build's forgotten buffer, below the model's so a deinit still trims
            model.leak_ptr = self.heap.malloc(self.leak)
        flash_addr &= 0xFFFFFFFF
        if flash_addr:
            err = self._load_flash_path(model, flash_addr)
        elif path is None:
            return 2001, key, 0                      # 0x7ce: not reachable from Maix_kpu.c
        else:
            err = self._load_file_path(model, path)
        if err:
            self.destroy(key, failed_load=True)
            return err, 0, 0
        return 0, key, model.size

    def _load_file_path(self, model: Model, path: str) -> int:
        data = self.read_file(path)
        if data is None or len(data) <= 0 or len(data) < 8:
            return 2005                             # 0x2f4-0x32c
        head0, head1 = struct.unpack_from("<II", data, 0)
        model.type = t = model_type(head0)
        if t == 0:
            return 2002                             # 0x3ce
        size = head1 if (t < 0 or t == 100) else len(data)
        if (size - 1) & 0xFFFFFFFF >= MAX_MODEL:
            return 2003                             # 0x34c-0x354
        if t == 100:
            if len(data) < 24:
                return 2005                         # 0x382: the 16-byte sub-header
            return 2015                             # 0x3c6: no key to decrypt it (UNCONFIRMED)
        if self.library == "v3" and abs(t) != 3:
            return 2002                             # v3lib 0x35c-0x36c
        if t < 0 and size & 15:
            return 2003                             # 0x402
        err = self._buffers(model, size)
        if err:
            return err
        model.data = data[8:8 + size] if t < 0 else data[:size]
        model.size = size
        return self._parse(model)

    def _load_flash_path(self, model: Model, addr: int) -> int:
        head = self.flash_read(addr, 28)
        h = struct.unpack("<7I", head)
        model.type = t = model_type(h[0])
        size, err = 0, 0
        if t < 0 or t == 100:
            size = h[1]                             # 0xbc
        elif t == 0:
            err = 2002                              # 0x1f4 (-3)
        elif t == 3:                                # 0x104-0x150: walk the layer headers
            base = (addr + 28 + h[6] * 8) & 0xFFFFFFFF
            # the flash wraps at 16 MiB, so 2M headers is every header there is
            seen = min(h[3], 1 << 21)
            table = self.flash_read(base, seen * 8)
            bodies = [u32(table, i * 8 + 4) for i in range(seen)]
            if 0 in bodies:
                return 2003                         # 0x14e (-5): a body_size of 0
            whole, rest = divmod(h[3], seen) if seen else (0, 0)
            total = (sum(bodies) * whole + sum(bodies[:rest])) & 0xFFFFFFFF
            size = (base + h[3] * 8 + total - addr) & 0xFFFFFFFF
        elif self.library == "v3":
            err = 2002                              # v3lib 0x156: only type 3 is walked
        else:                                       # 0x152-0x1e6: a v4 header in flash
            v4 = struct.unpack("<10I", self.flash_read(addr, 40))
            nodes = v4[6]
            table = self.heap.malloc((nodes * 8) & 0xFFFFFFFFFFFFFFFF)
            if table is None:
                return 2015                         # 0x1e8 (-7)
            off = (((v4[7] * 2 + v4[8]) * 16) + v4[4] + 40) & 0xFFFFFFFF
            seen = min(nodes, 1 << 21)
            headers = self.flash_read((addr + off) & 0xFFFFFFFF, seen * 8)
            total = sum(u32(headers, i * 8 + 4) for i in range(seen))
            self.heap.free(table)
            size = (off + nodes * 8 + total) & 0xFFFFFFFF
        if err:
            return err
        if (size - 1) & 0xFFFFFFFF >= MAX_MODEL:
            self.print("model size err\r\n")        # 0x226-0x23e
            return 2003
        if t == 100:
            return 2015                             # 0x2a8: no key (UNCONFIRMED)
        if t < 0 and size & 15:
            return 2003
        err = self._buffers(model, size)
        if err:
            return err
        start = addr + 8 if t < 0 else addr
        model.data = self.flash_read(start & 0xFFFFFFFF, size)
        model.size = size
        return self._parse(model)

    def _buffers(self, model: Model, size: int) -> int:
        """0x40a-0x45c: malloc(size + 256) aligned to 256, malloc(192) zeroed."""
        model.buf_ptr = self.heap.malloc((size + 256) & 0xFFFFFFFF)
        if model.buf_ptr is None:
            return 2006
        model.buf_addr = (model.buf_ptr + 255) & ~255
        model.ctx_ptr = self.heap.malloc(CTX192)
        if model.ctx_ptr is None:
            return 2006
        return 0

    # -- after the read (0x48a-0x7c6) ------------------------------------------------------------
    def _parse(self, model: Model) -> int:
        if model.type < 0:
            self.print("encrypted model\r\n")       # 0x5aa-0x5be
            return 2004                             # 0x63e: no key (UNCONFIRMED)
        data = model.data
        first = u32(data, 0)
        if first == V3:
            return self._parse_v3(model)
        if first == KMDL and self.library == "v4":
            return self._nncase(model)
        return 2002                                 # 0x79e

    def _read_ram(self, model: Model, addr: int) -> int:
        """A u32 the CPU reads at ``addr``: the model's bytes, zeros beyond, a fault past SRAM."""
        if not RAM_START <= addr <= RAM_END - 4:
            raise CpuFault("fault load", epc_site="sipeed_kpu_model_load")
        return u32(model.data, addr - model.buf_addr) if addr >= model.buf_addr else 0

    def _parse_v3(self, model: Model) -> int:
        data, base = model.data, model.buf_addr
        if u32(data, 8) != 0:
            return 2002                             # 0x666: arch
        outputs, layers, main_mem = u32(data, 24), u32(data, 12), u32(data, 20)
        model.layers, model.main_mem = layers, main_mem
        out_ptr = base + 28
        hdr_ptr = out_ptr + outputs * 8
        body_ptr = hdr_ptr + layers * 8
        main = self.heap.malloc(main_mem)
        if main is None:
            return 2006                             # 0x6ca
        model.frees.append(main)
        # the body-size sum reads every layer header (0x6d4-0x6e4) ...
        total = 0
        in_file = max(0, min(layers, (base + len(data) - hdr_ptr) // 8)) if hdr_ptr < base + len(data) else 0
        for i in range(in_file):
            total = (total + u32(data, hdr_ptr - base + i * 8 + 4)) & 0xFFFFFFFF
            model.layer_types.append(u32(data, hdr_ptr - base + i * 8))
        if layers > in_file:
            model.layer_types.extend([0] * min(layers - in_file, 64))
            if hdr_ptr + layers * 8 > RAM_END:
                raise CpuFault("fault load", epc_site="sipeed_kpu_model_load")
        # ... and the bodies are copied to the uncached alias and compared (0x6e8-0x790)
        if total and body_ptr + total > RAM_END:
            raise CpuFault("fault load", epc_site="memcpy")
        model.outputs = [(u32(data, 28 + i * 8), u32(data, 32 + i * 8)) for i in range(min(outputs, 4096))]
        return 0

    def _nncase(self, model: Model) -> int:
        data = model.data
        context = self.heap.malloc(NNCASE_CONTEXT)
        if context is None:
            return 2006                             # nncase_load_kmodel: -1
        model.frees.append(context)
        version, target, main_mem = u32(data, 4), u32(data, 12), u32(data, 20)
        nodes, inputs, outputs = u32(data, 24), u32(data, 28), u32(data, 32)
        ok = version == 4 and target <= 1           # try_load_model (interpreter.cpp.o 0x0-0x1c)
        if ok:
            main = self.heap.malloc(main_mem)       # operator new[](main_mem, nothrow)
            if main is None:
                ok = False
            else:
                model.frees.append(main)
        if not ok:
            # model_size()/load_kmodel read the node and input-shape tables through NULL
            raise CpuFault("fault load", epc_site="nncase_context::load_kmodel")
        model.layers, model.main_mem = nodes, main_mem
        constants = u32(data, 16)
        out_ranges = 40 + inputs * 32
        model.v4_output_sizes = [u32(data, out_ranges + i * 16 + 12) for i in range(min(outputs, 4096))]
        nodes_at = out_ranges + outputs * 16 + constants
        body_sum = 0
        for i in range(min(nodes, 1 << 20)):
            body_sum += u32(data, nodes_at + i * 8 + 4)
        model_size = (nodes_at + nodes * 8 + body_sum) & 0xFFFFFFFF
        if model.buf_addr + model_size > RAM_END or model.buf_addr + nodes_at + nodes * 8 > RAM_END:
            raise CpuFault("fault load", epc_site="memcpy")
        return 0

    # -- sipeed_kpu_model_load_flash (sipeed_kpu_model_load_flash0 / sipeed_kpu_load_kmodel_flash) --
    def load_flash(self, addr: int, dual: int, batch: int, spi_speed: int) -> tuple[int, int, int]:
        key = self.heap.malloc(1)
        if key is None:
            return 2006, 0, 0
        slot = self._claim()
        if slot is None:
            self.heap.free(key)
            return 2009, 0, 0
        model = Model(key=key, slot=slot, type=0, size=0)
        self.slots[slot] = model
        self.by_key[key] = model
        model.ctx_ptr = self.heap.malloc(CTX192)
        if model.ctx_ptr is None:
            self.destroy(key)
            return 2006, 0, 0
        err = self._load_kmodel_flash(model, addr & 0xFFFFFFFF, dual, spi_speed)
        if err:
            self.destroy(key)
            return err, 0, 0
        return 0, key, model.size

    def _load_kmodel_flash(self, model: Model, addr: int, dual: int, spi_speed: int) -> int:
        head_buf = self.heap.malloc(4096 + 256)
        if head_buf is None:
            return 2006
        self.print("SPI freq %d Hz\r\n" % spi_freq(spi_speed))
        head = self.flash_read(addr, 4096)
        first = u32(head, 0)
        if first == V3:
            if u32(head, 8) != 0:
                self.heap.free(head_buf)
                return 2002
            layers, outputs, main_mem = u32(head, 12), u32(head, 24), u32(head, 20)
            main = self.heap.malloc(main_mem)
            if main is None:
                self.heap.free(head_buf)
                return 2006
            hdr = 28 + outputs * 8
            total, biggest = hdr + layers * 8, 0
            for i in range(min(layers, 1 << 16)):
                body = u32(head, hdr + i * 8 + 4)
                total += body
                biggest = max(biggest, body)
            layer_buf = self.heap.malloc((biggest + 256) & 0xFFFFFFFF)
            second = self.heap.malloc((biggest + 256) & 0xFFFFFFFF) if dual else None
            if layer_buf is None or (dual and second is None):
                for ptr in (layer_buf, second, main, head_buf):
                    self.heap.free(ptr)
                return 2006
            model.frees += [p for p in (head_buf, main, layer_buf, second) if p is not None]
            model.type, model.size, model.layers = 3, total & 0xFFFFFFFF, layers
            model.data = head
            model.buf_addr = head_buf
            model.outputs = [(u32(head, 28 + i * 8), u32(head, 32 + i * 8)) for i in range(min(outputs, 512))]
            return 0
        if first == KMDL and self.library == "v4":
            # nncase_load_kmodel_flash: UNCONFIRMED beyond its entry; modelled like a file load
            model.data = head
            model.type = 4
            self.heap.free(head_buf)
            return self._nncase(model)
        self.heap.free(head_buf)
        return 2002


def spi_freq(requested: int) -> int:
    """spi_set_clk_rate(SPI3, rate) (kendryte-standalone-sdk@7fdb511fe lib/drivers/spi.c l.224-238)
    over an SPI3 clock of PLL0/2 = 403 MHz (UNCONFIRMED: MaixPy never sets SPI3's clock select and
    threshold, so the ROM's setting stands)."""
    source = 403_000_000
    div = source // max(requested & 0xFFFFFFFF, 1)
    div = 2 if div < 2 else min(div, 65534)
    return source // div
