"""KPU (``import KPU as kpu``): the adapter over the firmware's KPU service.

Every decision and text is the firmware's (k210sim.firmware.kpu, k210sim.firmware.kpu_loader);
this module only turns MicroPython objects into plain data and replies back into objects:
``kpu_net`` (a task: an id the firmware knows, a finaliser the GC runs), ``kpu_fmap`` (what
forward returns: subscriptable, no len(), a buffer), the netinfo rows. The module table is
Maix_kpu.c's (l.1815-1833): load, load_flash, set_outputs, init_yolo2, run_yolo2, deinit,
set_layers, forward, get_output, fmap, fmap_free, netinfo, memtest, face_encode, face_compare,
classifier. What needs a camera image (run_yolo2, fmap, classifier) cannot be fed one here: no
image module is simulated.
"""
from __future__ import annotations

import math
import struct
import weakref
from typing import TYPE_CHECKING, Any

from k210sim.firmware.kpu import arg
from k210sim.maixpy.fwcall import call, to_exception
from k210sim.maixpy.modules import final, module
from k210sim.program import ProgramHalted

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime

_TOKEN = object()


@final
class kpu_net:
    """py_kpu_net_obj_t as user code holds it; ``_id`` names it to the firmware."""

    __slots__ = ("_id", "_rt", "__weakref__")

    def __init__(self, token: object, rt: "Runtime", net_id: int) -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create 'kpu_net' instances")
        self._id = net_id
        self._rt = rt
        rt.finalisable[net_id] = weakref.ref(self)
        fin = weakref.finalize(self, rt.collected_object, net_id)
        fin.atexit = False

    def _info(self) -> dict:
        return call(self._rt, "kpu_describe", net=self._id)

    def __repr__(self) -> str:
        i = self._info()
        addr = i["model_addr"] if i["model_addr"] is not None else 0
        addr = addr - (1 << 32) if addr & 0x80000000 else addr
        path = i["model_path"] if i["model_path"] is not None else "(null)"
        return ('{"model_addr": %d, "model_size": %d, "model_path": "%s", "net_args": "(null)"}'
                % (addr, i["model_size"], path))

    __str__ = __repr__

    def model_addr(self) -> Any:
        return self._info()["model_addr"]

    def model_size(self) -> int:
        return self._info()["model_size"]

    def model_path(self) -> Any:
        return self._info()["model_path"]

    def net_arg(self) -> None:
        return None


@final
class kpu_fmap:
    """py_kpu_fmap_obj_t: a view of the output in the model's main memory (Maix_kpu.c l.1054-1248)."""

    __slots__ = ("_d",)

    def __init__(self, token: object, d: dict) -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create 'kpu_fmap' instances")
        self._d = d

    def __repr__(self) -> str:
        d = self._d
        code = d["typecode"] if d["typecode"] != "\0" else ""
        return ('{"fmap": "data"=0x%x, "size"=%d, "index": %d, "w": %d, "h": %d, "ch": %d, '
                '"typecode": %s}' % (d.get("addr", 0), d["size"], d["index"], d["w"], d["h"],
                                    d["ch"], code))

    def _values(self) -> tuple:
        d = self._d
        data = d["data"]
        if d["typecode"] == "B":
            return tuple(data)
        n = len(data) // 4
        return struct.unpack("<%df" % n, data[:n * 4])

    def __getitem__(self, index: Any) -> Any:
        if self._d["typecode"] not in ("B", "f"):
            raise TypeError("'kpu_fmap' object isn't subscriptable")
        values = self._values()
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise OSError("only slices with step=1 (aka None) are supported")
            return values[index]
        if not isinstance(index, int):
            raise TypeError("indices must be integers")
        if not -len(values) <= index < len(values):
            raise IndexError("kpu_fmap index out of range")
        return values[index]

    def __len__(self) -> int:       # the type has no len: MicroPython raises TypeError
        raise TypeError("object of type 'kpu_fmap' has no len()")

    def size(self) -> int:
        return self._d["size"]

    def index(self) -> int:
        return self._d["index"]

    def w(self) -> int:
        return self._d["w"]

    def h(self) -> int:
        return self._d["h"]

    def ch(self) -> int:
        return self._d["ch"]

    def typecode(self) -> str:
        return self._d["typecode"]


@final
class kpu_netinfo_find:
    __slots__ = ("_d",)

    def __init__(self, token: object, d: dict) -> None:
        if token is not _TOKEN:
            raise TypeError("cannot create instances")
        self._d = d

    def __repr__(self) -> str:
        d = self._d
        return ('{"index":%d, "type":%s, "wi":%d, "hi":%d, "wo":%d, "ho":%d, "chi":%d, "cho":%d, '
                '"dw":%d, "kernel_type":%d, "pool_type":%d, "para_size":%d}'
                % (d["index"], d["type"], d["wi"], d["hi"], d["wo"], d["ho"], d["chi"], d["cho"],
                   d["dw"], d["kernel_type"], d["pool_type"], d["para_size"]))


def _net_id(task: Any) -> int | None:
    return task._id if type(task) is kpu_net else None


def build(rt: "Runtime", name: str):

    def load_reply(op: str, **args: Any) -> Any:
        with rt.native():
            reply = rt.fw.call(op, args)
        if "ok" in reply:
            net = kpu_net(_TOKEN, rt, reply["ok"]["net"])
            rt.gc.note_garbage(64)
            return net
        if reply.get("orphan") is not None:
            # m_new_obj_with_finaliser made the object before the loader failed: it is garbage
            # now and prints "kpu_net __del__" at the next collection
            kpu_net(_TOKEN, rt, reply["orphan"])
        if "fault" in reply:
            from k210sim.firmware.errors import CpuFault
            rt.board.trap(CpuFault(reply["fault"], epc_site=reply.get("site", "")))
            raise ProgramHalted()
        raise to_exception(reply)

    def load(model: Any) -> kpu_net:
        return load_reply("kpu_load", source=arg(model))

    def load_flash(addr: Any, is_dual_buf: Any, batch_size: Any, spi_speed: Any) -> kpu_net:
        return load_reply("kpu_load_flash", addr=arg(addr), dual=arg(is_dual_buf),
                          batch=arg(batch_size), speed=arg(spi_speed))

    def deinit(task: Any) -> bool:
        return call(rt, "kpu_deinit", net=_net_id(task))

    def set_outputs(task: Any, idx: Any, w: Any, h: Any, ch: Any) -> bool:
        return call(rt, "kpu_set_outputs", net=_net_id(task), idx=arg(idx), w=arg(w), h=arg(h),
                    ch=arg(ch))

    def forward(kpu_net: Any = None, img: Any = None, out_index: int = 0, dma: int = -1) -> Any:
        if type(out_index) is not int:
            raise TypeError("can't convert %s to int" % type(out_index).__name__)
        if isinstance(img, list):
            items: list[Any] = []
            for v in img:
                if isinstance(v, (int, float)):
                    items.append(float(v))
                else:
                    items.append({"type": type(v).__name__})
            img_arg: dict = {"type": "list", "value": items}
        else:
            img_arg = {"type": type(img).__name__}
        d = call(rt, "kpu_forward", net=_net_id(kpu_net), img=img_arg, out_index=out_index)
        return None if d is None else kpu_fmap(_TOKEN, d)

    def get_output(task: Any, idx: Any) -> Any:
        d = call(rt, "kpu_get_output", net=_net_id(task), idx=arg(idx))
        return None if d is None else kpu_fmap(_TOKEN, d)

    def set_layers(task: Any, length: Any) -> bool:
        if type(length) is not int:
            raise TypeError("can't convert %s to int" % type(length).__name__)
        return call(rt, "kpu_set_layers", net=_net_id(task), length=length)

    def netinfo(task: Any) -> list:
        rows = call(rt, "kpu_netinfo", net=_net_id(task))
        return [kpu_netinfo_find(_TOKEN, r) for r in rows]

    def memtest() -> None:
        # py_kpu_memtest (l.1755-1775): a bisection of gc_alloc, then get_free_heap_size2
        free_gc = rt.gc.largest_free()
        sys_free = call(rt, "heap_free")
        rt.write_text("###free gc heap memory : %d KB\r\n" % (free_gc // 1024)
                      + "###free sys heap memory: %d KB\r\n" % (sys_free // 1024))

    def fmap(fmap_obj: Any, ch: Any) -> Any:
        if type(ch) is not int:
            raise TypeError("can't convert %s to int" % type(ch).__name__)
        d = fmap_obj._d if type(fmap_obj) is kpu_fmap else {"ch": 0, "typecode": "\0"}
        if ch < 0 or ch >= d["ch"]:
            raise ValueError("[MAIXPY]kpu: ch err,input 0~%d\r\n" % d["ch"])
        if d["typecode"] != "B":
            raise ValueError("[MAIXPY]kpu: can't convet float fmap yet\r\n")
        raise NotImplementedError("image module not simulated")

    def fmap_free(fmap_obj: Any) -> None:
        return None

    def init_yolo2(*args: Any, **kw: Any) -> Any:
        raise NotImplementedError("KPU.init_yolo2: YOLO post-processing is not simulated")

    def run_yolo2(*args: Any, **kw: Any) -> Any:
        raise NotImplementedError("KPU.run_yolo2 needs a camera image: not simulated")

    def face_encode(features: Any) -> bytearray:
        values = [float(v) for v in features]
        if len(values) > 512:
            raise ValueError("feature dim <=200\r\n")
        norm = math.sqrt(sum(v * v for v in values)) or 1.0   # UNCONFIRMED encoding
        return bytearray((max(-128, min(127, round(v / norm * 127))) & 0xFF) for v in values)

    def face_compare(f0: Any, f1: Any) -> float:
        a, b = bytes(memoryview(f0)), bytes(memoryview(f1))
        if len(a) != len(b):
            raise ValueError("compare feature must in same dim!\r\n")
        sa = [x - 256 if x > 127 else x for x in a]
        sb = [x - 256 if x > 127 else x for x in b]
        dot = sum(x * y for x, y in zip(sa, sb))
        na = math.sqrt(sum(x * x for x in sa)) or 1.0
        nb = math.sqrt(sum(x * x for x in sb)) or 1.0
        return (dot / (na * nb) + 1) * 50.0               # UNCONFIRMED scoring

    class classifier:                                     # Maix_kpu_classifier_type
        def __init__(self, *args: Any, **kw: Any) -> None:
            raise NotImplementedError("KPU.classifier needs camera images: not simulated")

    return module(name, load=load, load_flash=load_flash, set_outputs=set_outputs,
                  init_yolo2=init_yolo2, run_yolo2=run_yolo2, deinit=deinit,
                  set_layers=set_layers, forward=forward, get_output=get_output, fmap=fmap,
                  fmap_free=fmap_free, netinfo=netinfo, memtest=memtest,
                  face_encode=face_encode, face_compare=face_compare, classifier=classifier)
