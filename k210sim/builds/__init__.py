"""The firmware builds the simulated board can run, each described in builds/NAME.toml.

A build description is the simulator's own knowledge of one MaixPy .bin, read from the firmware
source at the commit it was built from (sipeed/MaixPy-v1 @ 973361c0d for v0.6.2-75): which closed
KPU loader library it links, how big it is, where its newlib heap starts, what it allocates at
boot. It is never a test expectation: the test framework's firmware profiles are a separate
truth, calibrated on real boards. A build may name a ``base`` build and add ``[faults]``: a
deliberately regressed build for proving that tests catch regressions.

    [build]     name, description, version, build_date, release_file, kpu_library, image_size, base
    [memory]    heap_start, gc_heap_default, boot_malloc
    [hardware]  flash_id
    [faults]    boot_heap_shrink, deinit_leak          (regressed builds only)
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from k210sim.errors import BuildError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

BUILD_DIR = Path(__file__).resolve().parent
DEFAULT_BUILD = "maixpy-v0.6.2-full"
KPU_LIBRARIES = {
    # sipeed/MaixPy-v1@973361c0d components/kendryte_sdk/CMakeLists.txt: the V4 build links
    # lib_sipeed_kpu_v4.a and libnncase.a, every other build lib_sipeed_kpu.a.
    "v4": "lib_sipeed_kpu_v4.a + libnncase.a",
    "v3": "lib_sipeed_kpu.a",
}
SRAM_BASE = 0x80000000
HEAP_END = 0x80600000          # _heap_end: the end of the 6 MiB general SRAM
FLASH_SIZE = 16 * 1024 * 1024
IMAGE_WRAPPER = 1 + 4 + 32     # kflash's flag byte, length and SHA-256 around a .bin


@dataclass(frozen=True)
class Faults:
    """What a deliberately regressed build does wrong."""
    boot_heap_shrink: int = 0   # bytes more of SRAM the image takes (heap_start moves up)
    deinit_leak: int = 0        # bytes kpu.deinit leaves allocated per model


@dataclass(frozen=True)
class Build:
    name: str
    description: str
    version: str               # as the banner prints it: "v0.6.2-75-g973361c0d"
    build_date: str            # banner date
    release_file: str          # the released .bin this describes ("" for a simulated regression)
    kpu_library: str           # "v4" or "v3" (KPU_LIBRARIES)
    image_size: int            # bytes of the .bin payload
    heap_start: int            # newlib's heap start: the break when mp_task mallocs the GC heap
    gc_heap_default: int       # CONFIG_MAIXPY_GC_HEAP_SIZE
    boot_malloc: int           # system heap the firmware mallocs at boot after the GC heap
    flash_id: str = "0xc8:0x17"
    faults: Faults = Faults()
    path: Path | None = None

    @property
    def has_v4_loader(self) -> bool:
        return self.kpu_library == "v4"

    @property
    def effective_heap_start(self) -> int:
        return self.heap_start + self.faults.boot_heap_shrink

    @property
    def banner(self) -> str:
        return f"MicroPython {self.version} on {self.build_date}; Sipeed_M1 with kendryte-k210"


class _Table:
    def __init__(self, path: Path, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise BuildError(f"{path}: [{name}] must be a table")
        self.path, self.name, self.data, self.seen = path, name, data, set()

    def take(self, key: str, typ: type, default: Any = ...) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is ...:
                raise BuildError(f"{self.path}: {self.name}.{key}: missing (required)")
            return default
        value = self.data[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise BuildError(f"{self.path}: {self.name}.{key}: must be {typ.__name__}, got {value!r}")
        return value

    def done(self) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise BuildError(f"{self.path}: {self.name}.{extra[0]}: unknown key")


def available() -> list[str]:
    return sorted(p.stem for p in BUILD_DIR.glob("*.toml"))


def load_build(name: str, _seen: tuple[str, ...] = ()) -> Build:
    """The build called ``name`` (k210sim/builds/NAME.toml)."""
    path = BUILD_DIR / f"{name}.toml"
    if "/" in name or not path.is_file():
        raise BuildError(f"unknown firmware build {name!r} (known: {', '.join(available())})")
    if name in _seen:
        raise BuildError(f"{path}: build.base loops back to {name!r}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{path}: cannot read: {exc}") from None
    extra = sorted(set(data) - {"build", "memory", "hardware", "faults"})
    if extra:
        raise BuildError(f"{path}: [{extra[0]}]: unknown table")
    b = _Table(path, "build", data.get("build", {}))
    if b.take("name", str) != name:
        raise BuildError(f"{path}: build.name must be {name!r} (the file name)")
    base_name = b.take("base", str, "")
    base = load_build(base_name, _seen + (name,)) if base_name else None
    m = _Table(path, "memory", data.get("memory", {}))
    h = _Table(path, "hardware", data.get("hardware", {}))
    f = _Table(path, "faults", data.get("faults", {}))

    def pick(table: _Table, key: str, typ: type) -> Any:
        return table.take(key, typ, getattr(base, key) if base is not None else ...)

    build = Build(
        name=name, description=b.take("description", str, ""),
        version=pick(b, "version", str), build_date=pick(b, "build_date", str),
        release_file=b.take("release_file", str, ""), kpu_library=pick(b, "kpu_library", str),
        image_size=pick(b, "image_size", int), heap_start=pick(m, "heap_start", int),
        gc_heap_default=pick(m, "gc_heap_default", int), boot_malloc=pick(m, "boot_malloc", int),
        flash_id=h.take("flash_id", str, base.flash_id if base else "0xc8:0x17"),
        faults=Faults(boot_heap_shrink=f.take("boot_heap_shrink", int, 0),
                      deinit_leak=f.take("deinit_leak", int, 0)),
        path=path)
    for t in (b, m, h, f):
        t.done()
    _check(build)
    return build


def _check(b: Build) -> None:
    where = str(b.path)
    if b.kpu_library not in KPU_LIBRARIES:
        raise BuildError(f"{where}: build.kpu_library: {b.kpu_library!r} is not one of {', '.join(KPU_LIBRARIES)}")
    if not 0 < b.image_size <= FLASH_SIZE - IMAGE_WRAPPER:
        raise BuildError(f"{where}: build.image_size: {b.image_size} does not fit the 16 MiB flash")
    if not SRAM_BASE + b.image_size <= b.heap_start < HEAP_END:
        raise BuildError(f"{where}: memory.heap_start: {b.heap_start:#x} must lie between the end of "
                         f"the image ({SRAM_BASE + b.image_size:#x}) and {HEAP_END:#x}")
    if b.effective_heap_start >= HEAP_END:
        raise BuildError(f"{where}: faults.boot_heap_shrink leaves no heap")
    for key in ("gc_heap_default", "boot_malloc"):
        if getattr(b, key) < 0:
            raise BuildError(f"{where}: memory.{key}: must be >= 0")
    if b.faults.deinit_leak < 0 or b.faults.boot_heap_shrink < 0:
        raise BuildError(f"{where}: faults: values must be >= 0")


def with_faults(build: Build, **faults: int) -> Build:
    """A copy of ``build`` carrying extra faults (tests)."""
    return replace(build, faults=replace(build.faults, **faults))
