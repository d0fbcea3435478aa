"""The device API: what suites (and the domain drivers) may call on any board, whatever firmware.

A firmware flavour (hil.device.flavours) implements ``Device`` and ``KpuDriver``: MicroPython
(MaixPy) over its raw REPL today; a C agent speaking a line protocol over the UART can implement
the same two classes. A flavour gets the board's lifecycle (hil.board.lifecycle): it never resets
or reflashes by itself, it asks the lifecycle. Operations a flavour cannot do raise
``Unsupported`` (a NotImplementedError), which the domain drivers and suites turn into another
route or a skip.

Errors are typed (hil.errors): a failed load is KpuLoadError with the firmware's text and code
(MemoryOverflow when it ran out of memory); another KPU call that raised is KpuError.

What a suite needs beyond the common API it asks by name: ``device.supports("kpu_forward")``
(``FEATURES`` lists them); ``device.why_not(feature)`` is the reason a test skips with.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hil.errors import MemoryOverflow

Progress = Callable[[int, int], None]

# Features some firmware has and some does not: name -> what it is.
FEATURES = {
    "repl": "a MicroPython REPL that runs programs on the board",
    "gc_heap": "an interpreter (GC) heap: gc.mem_free() and utils.gc_heap_size()",
    "flash_files": "a file system on the SPI flash (/flash)",
    "kpu_forward": "running a loaded model (kpu.forward)",
}


class Unsupported(NotImplementedError):
    """This firmware flavour cannot do that (the message says what and why)."""


@dataclass(frozen=True)
class Memory:
    gc_free: int | None   # free interpreter heap after a collection (MicroPython: gc.mem_free()), bytes;
                          # None without an interpreter heap (C firmware)
    sys_heap_free: int    # free system heap, where kpu.load allocates (MaixPy: utils.heap_free()), bytes


@dataclass(frozen=True)
class KpuHandle:
    id: int
    model: str            # the path, or the flash offset in hex

    def __str__(self) -> str:
        return f"kpu#{self.id}({self.model})"


class KpuDriver(ABC):
    """Models on the board's KPU: load from a path or a flash offset, deinit, forward.

    Handles are dropped when the board reboots (the driver subscribes to the board's events).
    """

    @abstractmethod
    def load(self, source: str | int, timeout: float = 120.0) -> KpuHandle:
        """The model stays loaded until ``deinit``. KpuLoadError / MemoryOverflow on failure."""

    @abstractmethod
    def deinit(self, handle: KpuHandle, keep_task: bool = False, timeout: float = 30.0) -> str:
        """Free the model; what the firmware's deinit returned, as text. ``keep_task``: the freed
        task stays reachable, so a test can call the firmware on it again (``drop`` lets it go)."""

    @abstractmethod
    def forward(self, handle: KpuHandle, data: list[float], timeout: float = 30.0) -> str:
        """Run the model on ``data``; the firmware's result, as text. KpuError when it raises."""

    @abstractmethod
    def drop(self, handle: KpuHandle) -> None:
        """Forget a task kept by ``deinit(keep_task=True)``."""

    @abstractmethod
    def deinit_all(self) -> int:
        """Free every model this driver loaded that the board still holds; how many."""

    _loaded: dict[int, KpuHandle]     # by handle id; a driver fills it as it loads

    # Board events: a reboot frees every task, so every handle is gone with it.
    def rebooted(self, cause: object) -> None:
        self._loaded.clear()

    def reconnected(self) -> None:
        pass

    @property
    def loaded(self) -> tuple[KpuHandle, ...]:
        """Handles loaded and not yet freed (empty after a reboot)."""
        return tuple(self._loaded.values())

    def loads(self, source: str | int) -> bool:
        """True when the model loads (it is freed again); False on MemoryOverflow. Any other
        load error propagates."""
        try:
            handle = self.load(source)
        except MemoryOverflow:
            return False
        self.deinit(handle)
        return True


class Device(ABC):
    """One board's firmware, as the suites see it. ``lifecycle`` owns resets and reflashes."""

    lifecycle: Any
    kpu: KpuDriver
    features: frozenset[str] = frozenset()       # of FEATURES: what this firmware has

    @property
    def firmware_version(self) -> str:
        return self.lifecycle.firmware_version

    def supports(self, feature: str) -> bool:
        if feature not in FEATURES:
            raise KeyError(f"unknown device feature {feature!r} (known: {', '.join(FEATURES)})")
        return feature in self.features

    def why_not(self, feature: str) -> str:
        """Why this firmware lacks ``feature``: the reason a test that needs it skips with."""
        return f"this firmware ({type(self).__name__}) has no {FEATURES[feature]}"

    # -- memory --------------------------------------------------------------------------------
    @abstractmethod
    def memory(self) -> Memory: ...

    @abstractmethod
    def gc_heap_size(self) -> int: ...

    @abstractmethod
    def set_gc_heap_size(self, size: int) -> int:
        """Set the interpreter heap size (taking effect, through a reboot if need be); the new size."""

    # -- files -----------------------------------------------------------------------------------
    @abstractmethod
    def put(self, local: Path | str | bytes, remote: str, progress: Progress | None = None) -> str:
        """Copy a local file (or bytes) to the board; the verified sha256. Never leaves a partial
        file under ``remote``."""

    @abstractmethod
    def get(self, remote: str, local: Path | str | None = None, progress: Progress | None = None) -> bytes: ...

    @abstractmethod
    def sha256(self, remote: str) -> str: ...

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def size(self, path: str) -> int: ...

    @abstractmethod
    def remove(self, path: str, missing_ok: bool = False) -> None: ...

    @abstractmethod
    def listdir(self, path: str = "/") -> list[str]: ...

    @abstractmethod
    def mkdir(self, path: str, exist_ok: bool = True) -> None: ...

    @abstractmethod
    def sd_present(self) -> bool:
        """Whether the firmware mounted an SD card at /sd."""

    # -- flash -------------------------------------------------------------------------------------
    def flash_read(self, offset: int, n: int) -> bytes:
        """``n`` bytes of SPI flash at ``offset``, read by the firmware."""
        raise Unsupported(f"{type(self).__name__} cannot read the flash")

    def flash_sha256(self, offset: int, n: int) -> str:
        raise Unsupported(f"{type(self).__name__} cannot hash the flash")

    def flash_write(self, offset: int, data: bytes) -> None:
        """Write ``data`` to the SPI flash through the firmware itself, read back and checked (no
        reboot). Unsupported where the flash is written over ISP (the lifecycle does that)."""
        raise Unsupported(f"{type(self).__name__} cannot write the flash itself")

    # -- optional shortcuts the file cache uses when a flavour has them ------------------------------
    def generate(self, path: str, recipe: Any) -> str:
        """Write the model ``recipe`` describes on the board itself (no upload); its sha256."""
        raise Unsupported(f"{type(self).__name__} cannot generate models on the board")

    def can_generate(self, recipe: Any) -> bool:
        return False

    def write_sized(self, path: str, recipe: Any) -> str:
        """Write at ``path`` a model the loader treats as ``recipe``'s: its header, tables and size
        (what decides a load's memory). Where the flavour generates models on the board these are
        the exact bytes; a flavour without that writes the model's lead and grows the file, so the
        bodies (and the sha256 returned) differ from the full model's."""
        return self.generate(path, recipe)

    def derive(self, base: str, size: int, patches: list[tuple[int, str]], sha256: str, path: str) -> bool:
        """Make ``path`` from ``base`` on the board (a prefix with runs replaced), kept only when it
        hashes to ``sha256``; whether it did."""
        raise Unsupported(f"{type(self).__name__} cannot derive files on the board")

    # -- the KPU, for callers of the plain device API -------------------------------------------------
    def kpu_load(self, source: str | int, timeout: float = 120.0) -> KpuHandle:
        return self.kpu.load(source, timeout)

    def kpu_deinit(self, handle: KpuHandle, timeout: float = 30.0) -> None:
        self.kpu.deinit(handle, timeout=timeout)

    def kpu_deinit_all(self) -> int:
        return self.kpu.deinit_all()
