"""The KPU module as Maix_kpu.c implements it, over the closed loader (k210sim.firmware.kpu_loader).

sipeed/MaixPy-v1@973361c0d components/micropython/port/src/Maix/Maix_kpu.c, by function:
- get_kpu_err_str (l.185-227): the texts; 2002's depends on CONFIG_MICROPYTHON_KMODEL_V4_SUPPORT.
- py_kpu_class_load (l.353-433): ``m_new_obj_with_finaliser`` makes the kpu_net *before* the
  loader runs; an int <= 0 ("model_addr must > 0 "), a str containing none of .kmodel/.smodel/
  .emodel (strstr, anywhere in the path) and any other type are refused after ``m_del`` of that
  object; a loader error raises ValueError("[MAIXPY]kpu: load error:%d, %s") and leaves the
  object to the GC, whose finaliser later prints "kpu_net __del__\\r\\n" (l.132-137).
- py_kpu_class_load_flash (l.440-487): four ints; a non-int leaves the object unfreed too.
- py_kpu_deinit (l.1006-1029): destroys the model if the object still holds one; True always.
- py_kpu_class_set_outputs (l.494-536) over sipeed_kpu_set_outputs_shape0 (disasm): a v3 model
  -> 2002 "ctx error"; a bad index -> 2011; w*h*ch*4 != the output's bytes -> the library prints
  "w*h*ch!=%d\\r\\n" and 2012; a freed task dereferences NULL (a CPU fault).
- py_kpu_forward (l.1294-1451): a non-task returns None; a freed task faults in
  sipeed_kpu_model_get_type (it reads the slot through NULL); v4 needs every output shaped
  (_check_outputs_setting -> 2013, OSError "ERR_OUTPUTS_SET: ..."); the result is a kpu_fmap.
What the KPU computes is not modelled: output bytes are a deterministic function of the model and
the input (UNCONFIRMED values, right sizes and types).
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, Callable

from k210sim.firmware.errors import CpuFault, Raise
from k210sim.firmware.kpu_loader import KL_K210_CONV, Loader, Model, u32
from k210sim.firmware.newlib import NewlibHeap

PREFIX = "[MAIXPY]kpu: "
LOAD_FLASH_ARGS = ("[MAIXPY]kpu: load_flash arg format error: "
                   "task=kpu.load_flash(flash_addr, is_dual_buf, batch_size, spi_speed)")
SET_OUTPUTS_ARGS = ("[MAIXPY]kpu: set_outputs arg format error: "
                    "set_outputs(task, int idx, int w, int h, int ch)")
GET_OUTPUT_ARGS = "[MAIXPY]kpu: get_output arg format error: get_output(task, int idx)"
# layer_type_dtype0/1 (sipeed_kpu.o .data): typecode of a v3 output per layer type
DTYPES = "\0fB\0\0f\0\0BfBBfBfffBfBfBfBff"


def err_str(code: int, v4: bool) -> str:
    return {
        0: "ERR_NONE",
        2001: "ERR_PARAM: please check param, load address or kmodel file name",
        2002: ("ERR_KMODEL_VERSION: only support kmodel V3/V4 now" if v4
               else "ERR_KMODEL_VERSION: only support kmodel V3"),
        2003: "ERR_KMODEL_FORMAT: layer_header.body_size <=0",
        2004: "ERR_DECRYPT: check smodel match with your board",
        2005: "ERR_READ_FILE: read file failed",
        2006: "ERR_NO_MEM: memory not enough",
        2007: "ERR_GET_CONV_LAYER: first layer should be conv layer",
        2008: "ERR_RUN_MODEL: maybe model dirty",
        2009: "ERR_MODELS_FULL: we only support load 5 models in the same time",
        2010: "ERR_PERMITION",
        2011: "SIPEED_KPU_ERR_IDX_OUTRANGE",
        2012: "SIPEED_KPU_ERR_SIZE_NOTMATCH",
        2013: "ERR_OUTPUTS_SET: need kpu.set_outputs() to set shape",
        2014: "ERR_NOT_IMPLEMENT",
    }.get(code, "ERR_UNKNOWN")


def dtype_of(layer_type: int) -> str:
    if 0 <= layer_type < len(DTYPES):
        return DTYPES[layer_type]
    return "B" if 0x2800 <= layer_type <= 0x2803 else "\0"


@dataclass
class Net:
    """A kpu_net object's fields (py_kpu_net_obj_t)."""
    ctx: int = 0
    model_addr: int | None = None
    model_path: str | None = None
    model_size: int = 0
    max_layers: int = 0
    finaliser: bool = True     # m_del clears it; otherwise the GC runs __del__ once


def arg(value: Any) -> dict:
    """How an adapter passes a MicroPython argument: its type name and, for int/str, its value."""
    if type(value) is int:
        return {"type": "int", "value": value}
    if type(value) is str:
        return {"type": "str", "value": value}
    return {"type": type(value).__name__}


class KpuService:
    """One hard boot's KPU: the nets (by id), the loader's five slots, forward's scratch."""

    def __init__(self, library: str, heap: NewlibHeap, read_file: Callable[[str], bytes | None],
                 flash_read: Callable[[int, int], bytes], print_cooked: Callable[[str], None],
                 leak: int = 0) -> None:
        self.v4 = library == "v4"
        self.heap = heap
        self.print = print_cooked
        self.loader = Loader(library, heap, read_file, flash_read, print_cooked, leak)
        self.nets: dict[int, Net] = {}
        self._next_id = 1

    # -- objects ------------------------------------------------------------------------------
    def _new_net(self) -> int:
        net_id = self._next_id
        self._next_id += 1
        self.nets[net_id] = Net()
        return net_id

    def _net(self, net_id: Any) -> Net | None:
        return self.nets.get(net_id) if type(net_id) is int else None

    def describe(self, net_id: int) -> dict:
        n = self.nets[net_id]
        return {"model_addr": n.model_addr, "model_size": n.model_size,
                "model_path": n.model_path, "max_layers": n.max_layers}

    def _error(self, prefix: str, code: int) -> Raise:
        return Raise("ValueError", f"{PREFIX}{prefix} error:{code}, {err_str(code, self.v4)}")

    # -- load ---------------------------------------------------------------------------------
    def load(self, source: dict) -> dict:
        """{"net": id} or Raise; ``orphan`` in the Raise's reply when the object was kept."""
        net_id = self._new_net()
        net = self.nets[net_id]
        kind = source.get("type")
        if kind == "int":
            addr = source["value"]
            if addr <= 0:
                self._m_del(net_id)
                raise Raise("ValueError", PREFIX + "model_addr must > 0 ")
            net.model_addr = addr
            err, ctx, size = self.loader.load(addr & 0xFFFFFFFF, None)
        elif kind == "str":
            path = source["value"]
            net.model_path = path
            if not any(ext in path for ext in (".kmodel", ".smodel", ".emodel")):
                self._m_del(net_id)
                raise Raise("ValueError", PREFIX + "model format don't match, only supply .kmodel ")
            err, ctx, size = self.loader.load(0, path)
        else:
            self._m_del(net_id)
            raise Raise("TypeError", PREFIX + "only accept int or string")
        if err:
            raise self._orphan(self._error("load", err), net_id)
        self._loaded(net, ctx, size)
        return {"net": net_id}

    def load_flash(self, addr: dict, dual: dict, batch: dict, speed: dict) -> dict:
        net_id = self._new_net()
        net = self.nets[net_id]
        if not all(a.get("type") == "int" for a in (addr, dual, batch, speed)):
            raise self._orphan(Raise("ValueError", LOAD_FLASH_ARGS), net_id)
        if addr["value"] <= 0:
            self._m_del(net_id)
            raise Raise("ValueError", PREFIX + "model_addr must > 0 ")
        net.model_addr = addr["value"]
        err, ctx, size = self.loader.load_flash(addr["value"], dual["value"], batch["value"],
                                                speed["value"])
        if err:
            raise self._orphan(Raise("ValueError", f"{PREFIX}load_flash error:{err}, "
                                                   f"{err_str(err, self.v4)}"), net_id)
        self._loaded(net, ctx, size)
        return {"net": net_id}

    def _loaded(self, net: Net, ctx: int, size: int) -> None:
        net.ctx, net.model_size = ctx, size
        model = self.loader.lookup(ctx)
        net.max_layers = model.layers if model is not None else 0

    def _m_del(self, net_id: int) -> None:
        self.nets.pop(net_id, None)

    @staticmethod
    def _orphan(exc: Raise, net_id: int) -> Raise:
        exc.orphan = net_id  # type: ignore[attr-defined]
        return exc

    # -- deinit and the finaliser ----------------------------------------------------------------
    def deinit(self, net_id: Any) -> bool:
        net = self._net(net_id)
        if net is None:
            raise Raise("TypeError", PREFIX + "kpu_net type error")
        if net.ctx:
            model = self.loader.lookup(net.ctx)
            self.loader.destroy(net.ctx)
            if model is not None:
                net.ctx = 0
        return True

    def net_del(self, net_id: int) -> None:
        """py_kpu_net_del: the GC collected the object (or the soft reset swept it)."""
        net = self.nets.get(net_id)
        if net is None or not net.finaliser:
            return
        net.finaliser = False
        self.print("kpu_net __del__\r\n")
        self.deinit(net_id)
        self.nets.pop(net_id, None)

    # -- set_outputs ------------------------------------------------------------------------------
    def set_outputs(self, net_id: Any, idx: dict, w: dict, h: dict, ch: dict) -> bool:
        net = self._net(net_id)
        if net is None or not all(a.get("type") == "int" for a in (idx, w, h, ch)):
            raise Raise("ValueError", SET_OUTPUTS_ARGS)
        i, wv, hv, cv = (a["value"] & 0xFFFF for a in (idx, w, h, ch))
        model = self._model_or_fault(net, "sipeed_kpu_set_outputs_shape0")
        if abs(model.type) != 4:
            code = 2002
        elif i >= len(model.v4_output_sizes):
            code = 2011
        else:
            size = model.v4_output_sizes[i]
            product = (wv * hv * cv * 4) & 0xFFFFFFFF
            if product == size:
                model.shapes[i] = (wv, hv, cv)
                return True
            self.print("w*h*ch!=%d\r\n" % _i32(size))
            code = 2012
        if code == 2011:
            self.print(PREFIX + "set_outputs arg value error:kmodel output idx %d out of range\r\n" % i)
        elif code == 2012:
            self.print(PREFIX + "set_outputs arg value error: w,c,ch size not match output size\r\n")
        else:
            self.print(PREFIX + "set_outputs ctx error, maybe init err:%d\r\n" % code)
        return False

    def _model_or_fault(self, net: Net, site: str) -> Model:
        model = self.loader.lookup(net.ctx)
        if model is None:
            # VGhlcmUldTIwMTlz returns NULL for a NULL ctx and the caller reads slot->type through it
            raise CpuFault("fault load", epc_site=site)
        return model

    # -- forward / get_output ---------------------------------------------------------------------
    def forward(self, net_id: Any, img: dict, out_index: int) -> dict | None:
        net = self._net(net_id)
        if net is None:
            return None
        model = self._model_or_fault(net, "sipeed_kpu_model_get_type")
        kind = img.get("type")
        if kind != "list":
            raise Raise("ValueError", "input not support")
        values = img["value"]
        if not values:
            raise Raise("ValueError", PREFIX + "check input list format err!\r\n")
        scratch = self.heap.malloc(len(values) * 4)
        if scratch is None:
            raise Raise("ValueError", PREFIX + "alloc list mem err!\r\n")
        for v in values:            # mp_obj_get_float per item; the scratch buffer leaks
            if isinstance(v, dict):
                raise Raise("TypeError", "can't convert %s to float" % v.get("type", "object"))
        if abs(model.type) == 4:
            shaped = sum(1 for s in model.shapes.values() if all(s))
            if shaped != len(model.v4_output_sizes):
                raise Raise("OSError", err_str(2013, self.v4))   # scratch stays allocated
        self.heap.free(scratch)
        seed = hashlib.sha256(struct.pack("<%dd" % len(values), *map(float, values))).digest()
        return self._output(model, out_index & 0xFFFFFFFF, seed, "forward")

    def get_output(self, net_id: Any, idx: dict) -> dict | None:
        net = self._net(net_id)
        if net is None or idx.get("type") != "int":
            raise Raise("ValueError", GET_OUTPUT_ARGS)
        model = self._model_or_fault(net, "sipeed_kpu_model_get_type")
        return self._output(model, idx["value"] & 0xFFFF, b"", "get_output")

    def _output(self, model: Model, index: int, seed: bytes, who: str) -> dict | None:
        layers = model.layers
        if abs(model.type) == 3:
            last = (layers - 1) & 0xFFFFFFFF
            if last >= layers:
                self.print("err: index %d > layers_length %d!\r\n" % (_i32(last), layers))
                raise Raise("OSError", "sipeed_kpu_model_get_layer_num err" if who == "forward" else "2001")
            if index >= len(model.outputs):
                raise Raise("OSError", "sipeed_kpu_get_output err" if who == "forward" else "2001")
            size = model.outputs[index][1]
            layer_type = model.layer_types[last] if last < len(model.layer_types) else 0
            if layer_type == KL_K210_CONV:
                w, h, ch = self._conv_shape(model, last)
                typecode = "B"
            else:
                w, h, ch, typecode = size & 0xFFFF, 1, 1, dtype_of(layer_type)
        elif abs(model.type) == 4:
            if index >= len(model.v4_output_sizes):
                raise Raise("OSError", "sipeed_kpu_get_output err" if who == "forward" else "get_output err")
            size = model.v4_output_sizes[index]
            w, h, ch = model.shapes.get(index, (0, 0, 0))
            typecode = "f"
        else:
            return None
        data = _pseudo(model.data[:4096] + seed + index.to_bytes(4, "little"), size, typecode)
        return {"data": data, "size": size, "index": (layers - 1) & 0xFFFF, "w": w, "h": h,
                "ch": ch, "typecode": typecode}

    @staticmethod
    def _conv_shape(model: Model, layer: int) -> tuple[int, int, int]:
        """o_row_wid+1, o_col_high+1, o_ch_num+1 from the conv layer's KPU registers."""
        data = model.data
        outputs = u32(data, 24)
        hdr = 28 + outputs * 8
        body = hdr + model.layers * 8 + sum(u32(data, hdr + i * 8 + 4) for i in range(min(layer, 4096)))
        regs = u32(data, body + 8)                  # kpu_model_conv_layer_argument_t.layer_offset
        channels = int.from_bytes(data[regs + 16:regs + 24].ljust(8, b"\0"), "little")
        size = int.from_bytes(data[regs + 24:regs + 32].ljust(8, b"\0"), "little")
        return ((size >> 32) & 0x3FF) + 1, ((size >> 42) & 0x1FF) + 1, ((channels >> 32) & 0x3FF) + 1

    def set_layers(self, net_id: Any, length: int) -> bool:
        net = self._net(net_id)
        if net is None:
            raise CpuFault("fault load", epc_site="py_kpu_set_layers")
        if length > 0 and length > net.max_layers:
            self.print("err: set layers_length to %d, but max %d\r\n" % (length, net.max_layers))
            return False
        return True

    def netinfo(self, net_id: Any) -> list[dict]:
        net = self._net(net_id)
        model = self.loader.lookup(net.ctx) if net is not None else None
        if model is None or model.layers <= 0 or abs(model.type) == 4:
            raise Raise("ValueError", "get layer num error!")
        rows = []
        for i in range(min(model.layers, 255)):
            t = model.layer_types[i] if i < len(model.layer_types) else 0
            rows.append({"index": i, "type": t, "wi": 0, "hi": 0, "wo": 0, "ho": 0, "chi": 0,
                         "cho": 0, "dw": 0, "kernel_type": 0, "pool_type": 0, "para_size": 0})
        return rows


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _pseudo(seed: bytes, size: int, typecode: str) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    data = bytes(out[:size])
    if typecode == "f":
        n = size // 4
        data = struct.pack("<%df" % n, *((b / 255.0) for b in data[:n])).ljust(size, b"\0")
    return data
