"""The emulated MicroPython/MaixPy modules, one small file each, built per soft boot.

Import names follow MaixPy v0.6.2's mpconfigport.h: built-in modules (uos, time/utime, Maix,
machine, KPU, uhashlib, ...) and MicroPython weak links (os, json, struct, binascii, errno,
random, collections, hashlib, math). Deliberately absent although the real board has them:
network/socket/usocket (the sandbox gives user code no network), image/sensor/lcd/audio/video
(no camera or screen is simulated), ``kpu`` in lower case and a top-level ``utils`` (MaixPy has
neither: it is ``import KPU as kpu`` and ``from Maix import utils``).
"""
from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime

# import name -> (module file, name the module reports as __name__)
REGISTRY: dict[str, tuple[str, str]] = {
    "uos": ("os_mod", "uos"), "os": ("os_mod", "uos"),
    "time": ("time_mod", "utime"), "utime": ("time_mod", "utime"),
    "gc": ("gc_mod", "gc"),
    "Maix": ("maix_mod", "machine"),        # MaixPy's Maix module really names itself 'machine'
    "machine": ("machine_mod", "machine"),
    "sys": ("sys_mod", "sys"),
    "uhashlib": ("hashlib_mod", "uhashlib"), "hashlib": ("hashlib_mod", "uhashlib"),
    "ubinascii": ("binascii_mod", "ubinascii"), "binascii": ("binascii_mod", "ubinascii"),
    "ujson": ("json_mod", "ujson"), "json": ("json_mod", "ujson"),
    "ustruct": ("struct_mod", "ustruct"), "struct": ("struct_mod", "ustruct"),
    "micropython": ("micropython_mod", "micropython"),
    "ucollections": ("collections_mod", "ucollections"),
    "collections": ("collections_mod", "ucollections"),
    "array": ("array_mod", "array"),
    "math": ("math_mod", "math"),
    "urandom": ("random_mod", "urandom"), "random": ("random_mod", "urandom"),
    "uerrno": ("errno_mod", "uerrno"), "errno": ("errno_mod", "uerrno"),
    "KPU": ("kpu_mod", "kpu"),
}


def module(name: str, **attrs: Any) -> types.ModuleType:
    """A module object as user code sees it: repr <module 'name'>, the given attributes."""
    mod = types.ModuleType(name)
    del mod.__doc__
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


def builtin_module(rt: "Runtime", name: str) -> types.ModuleType | None:
    """The emulated module for an import name (one object per soft boot), or None."""
    entry = REGISTRY.get(name)
    if entry is None:
        return None
    file, mp_name = entry
    cache = rt.builtin_modules
    if file not in cache:
        builder: Callable[["Runtime", str], types.ModuleType] = \
            importlib.import_module(f"{__name__}.{file}").build
        cache[file] = builder(rt, mp_name)
    return cache[file]


def names() -> list[str]:
    return sorted(REGISTRY)


def final(cls: type) -> type:
    """Emulated classes cannot be subclassed by user code (their internals are host objects)."""
    def _no_subclass(sub: type, **kw: Any) -> None:
        raise TypeError("type '%s' is not an acceptable base type" % cls.__name__)
    cls.__init_subclass__ = classmethod(_no_subclass)  # type: ignore[assignment]
    return cls
