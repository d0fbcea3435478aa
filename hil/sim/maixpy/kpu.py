"""MaixPy's KPU model loader (Maix_kpu.c + the closed lib_sipeed_kpu), emulated.

``KpuCore`` lives for one hard boot (model buffers come from the system heap, which a soft reset
does not reset). The decisions kpu.load makes, in this order, with the profile's exact texts
(``profile.errors``; ValueError unless said):
1. argument: an int offset <= 0 -> ``model_addr``; a str not containing .kmodel/.smodel/.emodel
   -> ``path_format``; anything else -> TypeError "[MAIXPY]kpu: only accept int or string".
2. read: a path that does not exist, or /sd without a card -> OSError ``missing_file``. A flash
   offset reads the header there and ``hil.kmodel.format.model_size_from_header`` says how much
   more to read (an offset past the flash, or no model there -> ``version``).
3. ``sniff_version``: None, or not in ``profile.kpu.load_versions`` -> ``version`` (v5 on every
   MaixPy build; v4 on builds without the v4 loader).
4. format, decided by ``hil.kmodel.verdict.maixpy_load_error`` (shared with the suites' model
   fixtures, which documents its order and guesses): fewer bytes than the header math needs (v3
   and v4 may be 7 short) -> ``read_file``; zero layers or a body_size <= 0 -> ``body_size``
   (ERR_KMODEL_FORMAT); v3 whose first layer is not a K210 conv -> ``first_layer``.
5. slots: ``profile.kpu.max_models`` models already holding memory -> ``models_full``.
6. memory: malloc(model bytes) then malloc(main_mem) from the system heap -> ``no_mem`` when
   either does not fit (the first is given back). No "E (...) SYSCALL: Out of memory" line is
   printed before it (PRINT_SYSCALL_OOM; some builds do, v0.6.2 release builds are not known to).
``load_flash`` makes the same decisions with its own prefix ("load_flash error:") and allocates
main_mem plus a layer buffer (min(model, 256 KiB), twice with is_dual_buf: UNCONFIRMED sizes)
instead of the whole model.

Task objects (``kpu_net``) print as Maix_kpu.c's py_kpu_net_obj_print. ``kpu.deinit(task)`` frees
the model (keeping ``profile.sim.deinit_leak`` bytes lost) and returns True; a second deinit, or
deinit of a task whose memory a finaliser already freed, is a no-op returning True (the C code
checks kmodel_ctx, which destroy clears). Using a deinit'ed task in forward raises OSError
"ERR_PARAM: ...". Like MicroPython, a kpu_net is finalised when the GC collects it, not when the
last reference goes: ``gc.collect()`` (also the automatic one) and a soft reset print
``kpu_net __del__`` (through cooked output, so "\\r\\r\\n") for each collected task and free what
it still holds; a soft reset finalises every task.
"""
from __future__ import annotations

import hashlib
import struct
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from hil.sim.maixpy.memory import OutOfMemory, SystemHeap

PRINT_SYSCALL_OOM = False
LOAD_FLASH_LAYER_BUF = 256 * 1024
KL_K210_CONV = 0x2800
TYPE_ERROR = "[MAIXPY]kpu: only accept int or string"
NET_TYPE_ERROR = "[MAIXPY]kpu: kpu_net type error"
ERR_PARAM = "ERR_PARAM: please check param, load address or kmodel file name"
LOAD_FLASH_ARGS = ("[MAIXPY]kpu: load_flash arg format error: "
                   "task=kpu.load_flash(flash_addr, is_dual_buf, batch_size, spi_speed)")
SET_OUTPUTS_ARGS = ("[MAIXPY]kpu: set_outputs arg format error: "
                    "set_outputs(task, int idx, int w, int h, int ch)")
_TOKEN = object()


class KpuError(Exception):
    """A load failure: ``exc`` is what user code sees."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


@dataclass
class Model:
    version: int
    file_size: int           # what the task reports as model_size
    main_mem: int
    outputs: int
    costs: list[int]
    path: str | None
    addr: int
    data_digest: bytes
    shapes: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    held: bool = True        # memory still allocated
    finalised: bool = False


class KpuCore:
    def __init__(self, profile: Any, heap: SystemHeap, flash_read: Callable[[int, int], bytes],
                 flash_size: int, emit: Callable[[str], None]) -> None:
        self.profile = profile
        self.heap = heap
        self._flash_read = flash_read
        self._flash_size = flash_size
        self._emit = emit               # cooked board output (mp_plat_print)
        self._lock = threading.Lock()
        self._models: list[Model] = []  # every model not yet finalised
        self._collected: list[Model] = []
        self.leak = profile.sim.deinit_leak if profile.sim is not None else 0

    # -- errors -------------------------------------------------------------------------------
    def _value(self, text: str, flash: bool) -> KpuError:
        if flash:
            text = text.replace("kpu: load error:", "kpu: load_flash error:")
        return KpuError(ValueError(text))

    # -- loading ------------------------------------------------------------------------------
    def load(self, source: Any, read_file: Callable[[str], bytes]) -> "KpuNet":
        err = self.profile.errors
        if type(source) is int:
            if source <= 0:
                raise KpuError(ValueError(err.model_addr))
            data = self._read_flash_model(source, flash=False)
            path, addr = None, source
        elif type(source) is str:
            if not any(ext in source for ext in (".kmodel", ".smodel", ".emodel")):
                raise KpuError(ValueError(err.path_format))
            data = read_file(source)
            path, addr = source, 0
        else:
            raise KpuError(TypeError(TYPE_ERROR))
        version, main_mem, outputs = self._check(data, flash=False)
        model = self._allocate(len(data), main_mem, flash=False, version=version,
                               outputs=outputs, path=path, addr=addr, data=data)
        return KpuNet(_TOKEN, self, model)

    def load_flash(self, addr: Any, dual: Any, batch: Any, speed: Any) -> "KpuNet":
        if not all(type(v) is int for v in (addr, dual, batch, speed)):
            raise KpuError(ValueError(LOAD_FLASH_ARGS))
        if addr <= 0:
            raise KpuError(ValueError(self.profile.errors.model_addr))
        data = self._read_flash_model(addr, flash=True)
        version, main_mem, outputs = self._check(data, flash=True)
        layer_buf = min(len(data), LOAD_FLASH_LAYER_BUF) * (2 if dual else 1)
        model = self._allocate(layer_buf, main_mem, flash=True, version=version,
                               outputs=outputs, path=None, addr=addr, data=data)
        model.file_size = len(data)
        return KpuNet(_TOKEN, self, model)

    def _read_flash_model(self, addr: int, flash: bool) -> bytes:
        from hil.errors import KModelFormatError
        from hil.kmodel import format as kformat
        err = self.profile.errors
        if addr >= self._flash_size:
            raise self._value(err.version, flash)
        room = self._flash_size - addr
        head = self._flash_read(addr, min(64, room))
        if kformat.sniff_version(head) is None:
            raise self._value(err.version, flash)
        try:
            need = kformat.header_bytes_needed(head, source=f"flash@0x{addr:x}")
            while need > len(head) and len(head) < room:
                head = self._flash_read(addr, min(need, room))
                need = kformat.header_bytes_needed(head, source=f"flash@0x{addr:x}")
            size = kformat.model_size_from_header(head, source=f"flash@0x{addr:x}")
        except KModelFormatError as exc:
            raise self._value(getattr(err, kformat.loader_error_key(exc)), flash) from None
        return self._flash_read(addr, min(max(size, len(head)), room))

    def _check(self, data: bytes, flash: bool) -> tuple[int, int, int]:
        """Steps 3 and 4 (hil.kmodel.verdict decides): (version, main_mem, outputs) or the error."""
        from hil.kmodel import format as kformat
        from hil.kmodel.verdict import maixpy_load_error
        key = maixpy_load_error(data, tuple(self.profile.kpu.load_versions), "kmodel")
        if key is not None:
            raise self._value(getattr(self.profile.errors, key), flash)
        info = kformat.parse_kmodel(data, source="kmodel")
        return info.version, info.main_mem, info.outputs

    def _allocate(self, nbytes: int, main_mem: int, flash: bool, **kw: Any) -> Model:
        err = self.profile.errors
        data = kw.pop("data")
        with self._lock:
            if sum(1 for m in self._models if m.held) >= self.profile.kpu.max_models:
                raise self._value(err.models_full, flash)
            costs: list[int] = []
            try:
                costs.append(self.heap.alloc(nbytes))
                costs.append(self.heap.alloc(main_mem))
            except OutOfMemory:
                for c in costs:
                    self.heap.free(c)
                if PRINT_SYSCALL_OOM:
                    self._emit("E (%d) SYSCALL: Out of memory\n" % 77045384089)
                raise self._value(err.no_mem, flash) from None
            model = Model(file_size=len(data), main_mem=main_mem, costs=costs,
                          data_digest=hashlib.sha256(bytes(data[:4096])).digest()
                          + len(data).to_bytes(8, "little"), **kw)
            self._models.append(model)
            return model

    # -- lifetime -----------------------------------------------------------------------------
    def _release(self, model: Model) -> None:
        with self._lock:
            if model.held:
                model.held = False
                self.heap.free(sum(model.costs), leak=self.leak)

    def deinit(self, net: Any) -> bool:
        if not isinstance(net, KpuNet):
            raise KpuError(TypeError(NET_TYPE_ERROR))
        self._release(net._m)
        return True

    def collected(self, model: Model) -> None:
        """weakref callback: the task object is garbage; MicroPython finalises it at next GC."""
        if not model.finalised:
            self._collected.append(model)

    def run_finalisers(self) -> None:
        """gc.collect(): print and release every collected task."""
        while self._collected:
            model = self._collected.pop(0)
            self._finalise(model)

    def finalise_all(self) -> None:
        """Soft reset (gc_sweep_all): every task left is finalised."""
        self._collected.clear()
        for model in list(self._models):
            self._finalise(model)

    def _finalise(self, model: Model) -> None:
        if model.finalised:
            return
        model.finalised = True
        self._emit("kpu_net __del__\r\n")
        self._release(model)
        with self._lock:
            if model in self._models:
                self._models.remove(model)

    # -- running ------------------------------------------------------------------------------
    def set_outputs(self, net: Any, idx: Any, w: Any, h: Any, ch: Any) -> bool:
        if not (isinstance(net, KpuNet) and all(type(v) is int for v in (idx, w, h, ch))):
            raise KpuError(ValueError(SET_OUTPUTS_ARGS))
        model = net._m
        if not model.held:
            self._emit("[MAIXPY]kpu: set_outputs ctx error, maybe init err:2001\r\n")
            return False
        if idx < 0 or idx >= max(model.outputs, 1):
            self._emit("[MAIXPY]kpu: set_outputs arg value error:kmodel output idx %d out of range\r\n"
                       % idx)
            return False
        model.shapes[idx] = (w, h, ch)
        return True

    def forward(self, net: Any, data: Any, out_index: int = 0) -> list[float]:
        if not isinstance(net, KpuNet):
            raise KpuError(TypeError(NET_TYPE_ERROR))
        model = net._m
        if not isinstance(data, list):
            raise KpuError(ValueError("input not support"))
        if not data:
            raise KpuError(ValueError("[MAIXPY]kpu: check input list format err!\r\n"))
        if not model.held:
            raise KpuError(OSError(self.profile.errors.param))
        if model.version == 4 and self.profile.kpu.v4_needs_set_outputs \
                and out_index not in model.shapes:
            raise KpuError(OSError(self.profile.errors.set_outputs))
        w, h, ch = model.shapes.get(out_index, (1, 1, 10))
        count = max(1, min(w * h * ch, 65536))
        try:
            seed_in = struct.pack("<%dd" % len(data), *[float(v) for v in data])
        except (TypeError, ValueError, struct.error):
            raise KpuError(TypeError("can't convert to float")) from None
        digest = hashlib.sha256(model.data_digest + seed_in + out_index.to_bytes(4, "little")).digest()
        out: list[float] = []
        while len(out) < count:
            digest = hashlib.sha256(digest).digest()
            out.extend(b / 255.0 for b in digest)
        return out[:count]

    def memtest_lines(self, gc_free: int) -> str:
        return ("###free gc heap memory : %d KB\r\n" % (gc_free // 1024)
                + "###free sys heap memory: %d KB\r\n" % (self.heap.free_bytes // 1024))


class KpuNet:
    """A loaded model as user code holds it (MaixPy's kpu_net type)."""

    __slots__ = ("_m", "__weakref__")

    def __init__(self, token: object, core: KpuCore, model: Model) -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create 'kpu_net' instances")
        self._m = model
        fin = weakref.finalize(self, core.collected, model)
        fin.atexit = False

    def __init_subclass__(cls, **kw: Any) -> None:
        raise TypeError("type 'kpu_net' is not an acceptable base type")

    def __repr__(self) -> str:
        m = self._m
        return ('{"model_addr": %d, "model_size": %d, "model_path": "%s", "net_args": "(null)"}'
                % (m.addr, m.file_size, m.path if m.path is not None else "(null)"))

    __str__ = __repr__

    def model_addr(self) -> Any:
        return self._m.addr if self._m.path is None else None

    def model_size(self) -> int:
        return self._m.file_size

    def model_path(self) -> Any:
        return self._m.path

    def net_arg(self) -> None:
        return None


KpuNet.__name__ = KpuNet.__qualname__ = "kpu_net"
