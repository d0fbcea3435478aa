"""The firmware side of the simulated MaixPy board, behind a narrow plain-data interface.

Everything the C firmware decides lives here (the kmodel loader, the system heap, the SHA
engine, the board config, the boot-time memory layout); the MicroPython modules user code sees
(k210sim.maixpy.modules) are thin adapters that turn Python objects into plain data, call one
operation, and turn the reply back. Arguments and results are ints, strs, bytes, bools, None,
lists and dicts of those, so the interpreter can move to another process (issue 15) and reach
this object through ``call(op, args)`` over a pipe without touching the firmware code.

Replies of ``call``: ``{"ok": value}``; ``{"raise": "ValueError", "text": ..., "errno": ...}``
for an exception the firmware raises (``orphan`` names a kpu_net left to the GC); and
``{"fault": reason, "site": ...}`` when the CPU traps (the caller must print nothing more and
let the board hang). While an operation runs it may print on the board's console through the
two writers it was built with (``raw``: printk/printf, bytes as they are; ``cooked``: mp_printf
to mp_plat_print, "\\n" -> "\\r\\n"), in the order the firmware prints.

Operations (args -> result):
  boot_memory {}                      -> {"gc_start", "gc_size"}  (once per hard boot)
  heap_free {}                        -> int   (Maix.utils.heap_free: the gap above the break)
  gc_heap_size {"value": int|None}    -> int | None
  flash_read {"addr", "length"}       -> bytes (24-bit wrap, never fails)
  kpu_load {"source": arg}            -> {"net": id}          arg = {"type": "int"|"str"|name, "value"}
  kpu_load_flash {"addr","dual","batch","speed": arg} -> {"net": id}
  kpu_describe {"net"}                -> {"model_addr","model_size","model_path","max_layers"}
  kpu_deinit {"net": id|None}         -> True
  kpu_net_del {"net"}                 -> None  (the object's finaliser: prints "kpu_net __del__")
  kpu_set_outputs {"net","idx","w","h","ch"} -> bool
  kpu_forward {"net","img","out_index"} -> fmap dict | None   img = {"type": "list", "value": [...]}
  kpu_get_output {"net","idx"}        -> fmap dict | None
  kpu_set_layers {"net","length"}     -> bool
  kpu_netinfo {"net"}                 -> [dict]
  sha_new {"data": bytes|None}        -> id ;  sha_update {"id","data"} ; sha_digest {"id"} -> bytes
  sha_forget {"id"} ; sha_hard {"data"} -> bytes
  version {}                          -> {"version","build_date","machine","release","kpu_library"}
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from k210sim.builds import HEAP_END, Build
from k210sim.firmware import config as board_config
from k210sim.firmware.errors import CpuFault, Raise
from k210sim.firmware.kpu import KpuService
from k210sim.firmware.newlib import NewlibHeap
from k210sim.firmware.sha import ShaEngine
from k210sim.firmware.syslog import CycleClock, sbrk_out_of_memory

GC_FALLBACK = 128 * 1024
GC_BLOCK = 32                 # MICROPY_BYTES_PER_GC_BLOCK = 4 words on RV64
MACHINE = "Sipeed_M1 with kendryte-k210"
PLAIN = (int, str, bytes, bool, float, type(None))


def gc_pool_bytes(start: int, size: int) -> int:
    """gc_init (micropython@ced340d py/gc.c l.104-140): what mem_free() + mem_alloc() add up to.

    Start and end are aligned to 32-byte blocks, the allocation and finaliser tables come off
    the front: a 512 KiB heap at 0x802ffd80 gives 518144 bytes of 32-byte blocks."""
    begin = (start + GC_BLOCK - 1) & ~(GC_BLOCK - 1)
    end = (start + size) & ~(GC_BLOCK - 1)
    total = max(end - begin, 0)
    atb = total * 8 // (8 + 8 * 4 // 8 + 8 * 4 * GC_BLOCK)
    return atb * 4 * GC_BLOCK


class FirmwareServices:
    """One hard boot of one build's firmware on one board's storage."""

    def __init__(self, build: Build, flash_root: Path, read_file: Callable[[str], bytes | None],
                 flash_read: Callable[[int, int], bytes], raw: Callable[[bytes], None],
                 cooked: Callable[[str], None], kpu_load_hook: Callable[[Any], None] | None = None) -> None:
        self.build = build
        self.flash_root = Path(flash_root)
        self.raw = raw
        self.cooked = cooked
        self.clock = CycleClock()
        self._flash = flash_read
        self.kpu_load_hook = kpu_load_hook
        self.heap = NewlibHeap(build.effective_heap_start, HEAP_END,
                               on_sbrk_fail=lambda: self.raw(sbrk_out_of_memory(self.clock)))
        self.kpu = KpuService(build.kpu_library, self.heap, read_file, self.flash_read_wrapped,
                              cooked, leak=build.faults.deinit_leak)
        self.sha = ShaEngine()
        self.gc_start = 0
        self.gc_size = 0

    # -- the plain-data door ------------------------------------------------------------------
    def call(self, op: str, args: dict | None = None) -> dict:
        fn = getattr(self, "op_" + op, None)
        if fn is None:
            return {"raise": "OSError", "text": f"unknown firmware operation {op!r}", "errno": None}
        try:
            return {"ok": fn(**(args or {}))}
        except Raise as exc:
            reply = exc.as_reply()
            if getattr(exc, "orphan", None) is not None:
                reply["orphan"] = exc.orphan  # type: ignore[attr-defined]
            return reply
        except CpuFault as fault:
            return {"fault": fault.reason, "site": fault.epc_site}

    # -- memory -------------------------------------------------------------------------------
    def op_boot_memory(self) -> dict:
        """mp_task (maixpy_main.c l.500-533): malloc the GC heap (128 KiB fallback), then the
        boot-time buffers; prints the fallback lines itself."""
        cfg = board_config.load(self.flash_root, self.build.gc_heap_default)
        size = cfg.gc_heap_size
        start = self.heap.malloc(size)
        if start is None:
            signed = size - (1 << 32) if size & 0x80000000 else size
            self.raw(b"GC heap size %d is too large, reset GC heap size\r\n" % signed)
            size = GC_FALLBACK
            start = self.heap.malloc(size)
            if start is None:
                self.raw(b"can't malloc 128k, check firmware size\r\n")
                raise CpuFault("hang", epc_site="mp_task")
            self.raw(b"GC size 128k\r\n")
        self.gc_start, self.gc_size = start, size
        if self.build.boot_malloc:
            self.heap.malloc(self.build.boot_malloc)
        return {"gc_start": start, "gc_size": size, "gc_pool": gc_pool_bytes(start, size)}

    def op_heap_free(self) -> int:
        return self.heap.gap

    def op_gc_heap_size(self, value: int | None = None) -> int | None:
        """Maix.utils.gc_heap_size (Maix_utils.c l.11-22): read, or save and return None."""
        cfg = board_config.load(self.flash_root, self.build.gc_heap_default)
        if value is None:
            return cfg.gc_heap_size
        cfg.gc_heap_size = value & 0xFFFFFFFF
        if not board_config.save(self.flash_root, cfg):
            raise Raise("OSError", errno=5)
        return None

    def flash_read_wrapped(self, addr: int, length: int) -> bytes:
        """w25qxx_read_data_dma: 24-bit addresses (the SPI command carries three address bytes),
        the chip wraps at its end; reads always succeed (W25QXX_OK)."""
        out = bytearray()
        addr &= 0xFFFFFF
        size = 1 << 24
        while length > 0:
            n = min(length, size - addr)
            out += self._flash(addr, n)
            length -= n
            addr = 0
        return bytes(out)

    def op_flash_read(self, addr: int, length: int) -> bytes:
        return self.flash_read_wrapped(addr, max(length, 0))

    # -- KPU ----------------------------------------------------------------------------------
    def op_kpu_load(self, source: dict) -> dict:
        if self.kpu_load_hook is not None:
            self.kpu_load_hook(source.get("value"))
        return self.kpu.load(source)

    def op_kpu_load_flash(self, addr: dict, dual: dict, batch: dict, speed: dict) -> dict:
        if self.kpu_load_hook is not None:
            self.kpu_load_hook(addr.get("value"))
        return self.kpu.load_flash(addr, dual, batch, speed)

    def op_kpu_describe(self, net: int) -> dict:
        return self.kpu.describe(net)

    def op_kpu_deinit(self, net: Any) -> bool:
        return self.kpu.deinit(net)

    def op_kpu_net_del(self, net: int) -> None:
        self.kpu.net_del(net)

    def op_kpu_set_outputs(self, net: Any, idx: dict, w: dict, h: dict, ch: dict) -> bool:
        return self.kpu.set_outputs(net, idx, w, h, ch)

    def op_kpu_forward(self, net: Any, img: dict, out_index: int = 0) -> dict | None:
        return self.kpu.forward(net, img, out_index)

    def op_kpu_get_output(self, net: Any, idx: dict) -> dict | None:
        return self.kpu.get_output(net, idx)

    def op_kpu_set_layers(self, net: Any, length: int) -> bool:
        return self.kpu.set_layers(net, length)

    def op_kpu_netinfo(self, net: Any) -> list:
        return self.kpu.netinfo(net)

    # -- SHA-256 engine -----------------------------------------------------------------------
    def op_sha_new(self, data: bytes | None = None) -> int:
        return self.sha.new(data)

    def op_sha_update(self, id: int, data: bytes) -> None:   # noqa: A002 - the wire's name
        self.sha.update(id, data)

    def op_sha_digest(self, id: int) -> bytes:               # noqa: A002
        return self.sha.digest(id)

    def op_sha_forget(self, id: int) -> None:                # noqa: A002
        self.sha.forget(id)

    def op_sha_hard(self, data: bytes) -> bytes:
        return self.sha.hard(data)

    # -- identity -----------------------------------------------------------------------------
    def op_version(self) -> dict:
        b = self.build
        return {"version": b.version, "build_date": b.build_date, "machine": MACHINE,
                "kpu_library": b.kpu_library, "flash_id": b.flash_id}


def is_plain(value: Any) -> bool:
    """The message contract: what may cross the interpreter/firmware boundary."""
    if isinstance(value, PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False
