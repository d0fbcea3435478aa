"""The device API the suites call: KPU load/deinit, memory figures, files on /sd and /flash.

Everything runs as short programs on the board's raw REPL. Firmware errors come back typed:
a failed ``kpu.load`` is KpuLoadError(text, code, exc_type, model) with the code parsed by the
firmware profile, and the out-of-memory case is MemoryOverflow, so a suite can say
``with pytest.raises(MemoryOverflow)`` and compare ``exc.text`` with ``firmware.errors.no_mem``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.errors import KpuLoadError, MemoryOverflow, ReplError, TransferError
from hil.repl import Repl
from hil.transfer import Progress, Transfer

if TYPE_CHECKING:
    from hil.board import Board

_HEX64 = re.compile(rb"\b([0-9a-f]{64})\b")


@dataclass(frozen=True)
class Memory:
    gc_free: int          # gc.mem_free() after gc.collect(): free MicroPython heap, bytes
    sys_heap_free: int    # Maix.utils.heap_free(): free system heap (where kpu.load allocates), bytes


@dataclass(frozen=True)
class KpuHandle:
    id: int
    model: str            # the path, or the flash offset in hex

    def __str__(self) -> str:
        return f"kpu#{self.id}({self.model})"


def _ints(out: bytes, n: int, what: str) -> list[int]:
    fields = out.split()
    try:
        values = [int(f) for f in fields[-n:]]
    except ValueError:
        values = []
    if len(values) != n:
        raise ReplError("ValueError", f"{what}: expected {n} integers, the board printed {out[:80]!r}")
    return values


class Device:
    """Device API over an opened board."""

    def __init__(self, board: "Board", repl: Repl) -> None:
        self.board = board
        self.repl = repl
        self.rig = board.rig
        self.profile = board.profile
        self.transfer = Transfer(repl, fast_baud=board.rig.serial.fast_baud)
        self._next_handle = 1
        self.handles: dict[int, KpuHandle] = {}

    # -- plain code ----------------------------------------------------------------------------
    def exec(self, code: str, timeout: float = 10.0) -> bytes:
        return self.repl.exec(code, timeout)

    def eval(self, expr: str, timeout: float = 10.0) -> Any:
        return self.repl.eval(expr, timeout)

    @property
    def firmware_version(self) -> str:
        return self.board.firmware_version

    # -- KPU -----------------------------------------------------------------------------------
    def _load_error(self, exc: ReplError, model: str) -> KpuLoadError:
        text = exc.message
        code = self.profile.errors.code_of(text)
        if text == self.profile.errors.no_mem or "ERR_NO_MEM" in text:
            return MemoryOverflow(text, code, exc.exc_type, model)
        return KpuLoadError(text, code, exc.exc_type, model)

    def kpu_load(self, source: str | int, timeout: float = 120.0) -> KpuHandle:
        """``kpu.load(path)`` or ``kpu.load(offset)``; the model stays loaded until kpu_deinit."""
        if isinstance(source, bool) or not isinstance(source, (str, int)):
            raise TypeError(f"kpu_load takes a path or a flash offset, not {source!r}")
        model = source if isinstance(source, str) else f"{source:#x}"
        handle = KpuHandle(self._next_handle, model)
        self._next_handle += 1
        code = ("import KPU as kpu\n"
                "try:\n    _hil_kpu\nexcept NameError:\n    _hil_kpu = {}\n"
                f"_hil_kpu[{handle.id}] = kpu.load({source!r})\n")
        try:
            self.repl.exec(code, timeout)
        except ReplError as exc:
            raise self._load_error(exc, model) from None
        self.handles[handle.id] = handle
        return handle

    def kpu_deinit(self, handle: KpuHandle, timeout: float = 30.0) -> None:
        self.repl.exec(f"import KPU as kpu\nkpu.deinit(_hil_kpu.pop({handle.id}))\n", timeout)
        self.handles.pop(handle.id, None)

    def kpu_deinit_all(self) -> int:
        """Free every model this API loaded (and the board still holds); returns how many."""
        out = self.repl.exec("import KPU as kpu\n_n = 0\ntry:\n    _hil_kpu\nexcept NameError:\n"
                             "    _hil_kpu = {}\nfor _k in list(_hil_kpu):\n"
                             "    kpu.deinit(_hil_kpu.pop(_k))\n    _n += 1\nprint(_n)\n", 60.0)
        self.handles.clear()
        return _ints(out, 1, "kpu_deinit_all")[0]

    # -- memory --------------------------------------------------------------------------------
    def memory(self) -> Memory:
        out = self.repl.exec("import gc\nfrom Maix import utils\ngc.collect()\n"
                             "print(gc.mem_free(), utils.heap_free())\n")
        gc_free, sys_free = _ints(out, 2, "memory()")
        return Memory(gc_free, sys_free)

    def gc_heap_size(self) -> int:
        return _ints(self.repl.exec("from Maix import utils\nprint(utils.gc_heap_size())\n"), 1,
                     "gc_heap_size()")[0]

    def set_gc_heap_size(self, size: int) -> int:
        """Set the GC heap size; the board reboots for it to take effect. Returns the new size."""
        if self.gc_heap_size() == size:
            return size
        self.repl.exec_start(f"from Maix import utils\nutils.gc_heap_size({int(size)})\n")
        console = self.repl.console
        from hil.board import BANNER_RE   # the board owns boot recognition
        index = console.expect([BANNER_RE, re.escape(b"\x04")], self.rig.serial.boot_timeout,
                               what=f"waiting for the reboot after gc_heap_size({size})")
        if index == 1:
            console.unread(b"\x04")
            result = self.repl.exec_finish(5.0)
            if result.stderr:
                from hil.repl import parse_traceback
                raise parse_traceback(result.stderr)
            self.board.note(f"gc_heap_size({size}) returned without a reboot; power-cycling for it")
            self.board.power_cycle()
        else:
            console.unread(console.after)
            self.board.reboot_wait(f"gc_heap_size({size})")
        self.handles.clear()
        return self.gc_heap_size()

    # -- files ---------------------------------------------------------------------------------
    def put(self, local: Path | str | bytes, remote: str, progress: Progress | None = None) -> str:
        """Copy a local file (or bytes) to the board; returns the verified sha256."""
        return self.transfer.put(local, remote, progress)

    def get(self, remote: str, local: Path | str | None = None, progress: Progress | None = None) -> bytes:
        return self.transfer.get(remote, local, progress)

    def sha256(self, remote: str) -> str:
        return self.transfer.remote_sha256(remote)

    def exists(self, path: str) -> bool:
        return self.repl.exec(f"import uos\ntry:\n    uos.stat({path!r})\n    print(1)\n"
                              f"except OSError:\n    print(0)\n").strip() == b"1"

    def size(self, path: str) -> int:
        return _ints(self.repl.exec(f"import uos\nprint(uos.stat({path!r})[6])\n"), 1, f"size of {path}")[0]

    def remove(self, path: str, missing_ok: bool = False) -> None:
        if missing_ok:
            self.repl.exec(f"import uos\ntry:\n    uos.remove({path!r})\nexcept OSError:\n    pass\n")
        else:
            self.repl.exec(f"import uos\nuos.remove({path!r})\n")

    def listdir(self, path: str = "/") -> list[str]:
        return list(self.repl.eval(f"__import__('uos').listdir({path!r})"))

    def mkdir(self, path: str, exist_ok: bool = True) -> None:
        if exist_ok and self.exists(path):
            return
        self.repl.exec(f"import uos\nuos.mkdir({path!r})\n")

    def sd_present(self) -> bool:
        """Whether the firmware mounted an SD card at /sd."""
        return self.repl.exec("import uos\ntry:\n    uos.listdir('/sd')\n    print(1)\n"
                              "except OSError:\n    print(0)\n").strip() == b"1"

    # -- models written on the board ---------------------------------------------------------
    def write_model_onboard(self, path: str, size: int, main_mem: int, seed: int = 0,
                            timeout: float | None = None) -> str:
        """Generate a v3 kmodel of ``size`` bytes on the board itself (no upload), checked
        against the same model built on the host; returns its sha256."""
        from hil.kmodel.build import build_v3          # the kmodel helper's modules, used lazily
        from hil.kmodel.onboard import writer_snippet
        want = hashlib.sha256(build_v3(size, main_mem=main_mem, seed=seed)).hexdigest()
        out = self.repl.exec(writer_snippet(path, size, main_mem, seed),
                             timeout if timeout is not None else 60.0 + size / 20000)
        found = _HEX64.findall(out)
        if not found:
            raise TransferError(f"write_model_onboard {path}: the board printed no sha256 ({out[-120:]!r})")
        got = found[-1].decode()
        if got != want:
            raise TransferError(f"write_model_onboard {path}: board sha256 {got[:16]} != host {want[:16]} "
                                f"(size {size}, main_mem {main_mem}, seed {seed})")
        return got

    def flash_model(self, offset: int, data: bytes) -> None:
        """Write a model at a flash offset over ISP (the board reboots into its firmware)."""
        self.board.flash_data(offset, data)
        self.handles.clear()
