"""The MicroPython device (MaixPy): exec/eval, memory, files on /sd and /flash, flash reads, and
models generated or derived on the board. Every program it runs is in
hil.device.micropython.code; resets and reboots are asked of the lifecycle.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from hil.board.state import GC_HEAP_SIZE
from hil.device.api import Device, Memory, Progress
from hil.device.micropython.code import device as code
from hil.device.micropython.code.kmodel_writer import writer_snippet
from hil.device.micropython.kpu import MaixPyKpu, ints
from hil.device.micropython.repl import Repl, parse_traceback
from hil.device.micropython.transfer import Transfer
from hil.errors import TransferError

_HEX64 = re.compile(rb"\b([0-9a-f]{64})\b")


def _both(first: Progress, second: Progress | None) -> Progress:
    """The step's progress (what the terminal shows) and the caller's, if any."""
    if second is None:
        return first

    def both(done: int, total: int) -> None:
        first(done, total)
        second(done, total)
    return both


class MicroPythonDevice(Device):
    """Device API over the raw REPL of a board whose lifecycle is ``lifecycle``."""

    features = frozenset({"repl", "gc_heap", "flash_files", "kpu_forward"})

    def __init__(self, lifecycle: Any, repl: Repl, rig: Any) -> None:
        self.lifecycle = lifecycle
        self.repl = repl
        self.rig = rig
        self.profile = rig.profile
        self.steps = lifecycle.steps
        self.transfer = Transfer(repl, fast_baud=rig.serial.fast_baud)
        self.kpu = MaixPyKpu(repl, self.profile, self.steps)

    def note(self, text: str) -> None:
        self.repl.console.link.note(text)

    # -- plain code ----------------------------------------------------------------------------
    def exec(self, program: str, timeout: float = 10.0) -> bytes:
        return self.repl.exec(program, timeout)

    def eval(self, expr: str, timeout: float = 10.0) -> Any:
        return self.repl.eval(expr, timeout)

    # -- memory --------------------------------------------------------------------------------
    def memory(self) -> Memory:
        gc_free, sys_free = ints(self.repl.exec(code.MEMORY), 2, "memory()")
        return Memory(gc_free, sys_free)

    def gc_heap_size(self) -> int:
        return ints(self.repl.exec(code.GC_HEAP_SIZE), 1, "gc_heap_size()")[0]

    def set_gc_heap_size(self, size: int) -> int:
        """Set the GC heap size. The firmware takes it at the next boot: if setting it does not
        reboot the board, the lifecycle power-cycles it. Returns the size read back."""
        if self.gc_heap_size() == size:
            return size
        self.repl.exec_start(code.set_gc_heap_size(size))
        if not self.lifecycle.await_reboot(GC_HEAP_SIZE):
            result = self.repl.exec_finish(5.0)
            if result.stderr:
                raise parse_traceback(result.stderr)
            self.note(f"gc_heap_size({size}) returned without a reboot; power-cycling for it")
            self.lifecycle.power_cycle()
        return self.gc_heap_size()

    # -- files ---------------------------------------------------------------------------------
    def put(self, local: Path | str | bytes, remote: str, progress: Progress | None = None) -> str:
        with self.steps("put", path=remote, show=True) as step:
            return self.transfer.put(local, remote, _both(step.progress, progress))

    def get(self, remote: str, local: Path | str | None = None, progress: Progress | None = None) -> bytes:
        with self.steps("get", path=remote, show=True) as step:
            return self.transfer.get(remote, local, _both(step.progress, progress))

    def sha256(self, remote: str) -> str:
        return self.transfer.remote_sha256(remote)

    def exists(self, path: str) -> bool:
        return self.repl.exec(code.exists(path)).strip() == b"1"

    def size(self, path: str) -> int:
        return ints(self.repl.exec(code.size(path)), 1, f"size of {path}")[0]

    def remove(self, path: str, missing_ok: bool = False) -> None:
        self.repl.exec(code.remove(path, missing_ok))

    def listdir(self, path: str = "/") -> list[str]:
        return list(self.repl.eval(code.listdir(path)))

    def mkdir(self, path: str, exist_ok: bool = True) -> None:
        if exist_ok and self.exists(path):
            return
        self.repl.exec(code.mkdir(path))

    def sd_present(self) -> bool:
        return self.repl.exec(code.SD_PRESENT).strip() == b"1"

    # -- flash ---------------------------------------------------------------------------------
    def flash_read(self, offset: int, n: int) -> bytes:
        out = self.repl.exec(code.flash_head(offset, n)).strip().split()
        return bytes.fromhex(out[-1].decode()) if out else b""

    def flash_sha256(self, offset: int, n: int) -> str:
        out = self.repl.exec(code.flash_sha256(offset, n), 60.0).strip().split()
        return out[-1].decode() if out else ""

    # -- models made on the board ----------------------------------------------------------------
    def write_model_onboard(self, path: str, size: int, main_mem: int, seed: int = 0,
                            timeout: float | None = None) -> str:
        """Generate a v3 kmodel of ``size`` bytes on the board itself (no upload), checked
        against the same model built on the host; returns its sha256."""
        from hil.kmodel.build import build_v3
        want = hashlib.sha256(build_v3(size, main_mem=main_mem, seed=seed)).hexdigest()
        with self.steps("generate model", path=path, size=size):
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

    def can_generate(self, recipe: Any) -> bool:
        """A v3 model with 3x3 kernels whose writer program is shorter than the model itself."""
        return (recipe.writer == "v3" and recipe.kernel == 3
                and len(writer_snippet("/sd/x", recipe.size, recipe.main_mem, recipe.seed)) < recipe.size)

    def generate(self, path: str, recipe: Any) -> str:
        return self.write_model_onboard(path, recipe.size, recipe.main_mem, recipe.seed)

    def derive(self, base: str, size: int, patches: list[tuple[int, str]], sha256: str, path: str) -> bool:
        out = self.repl.exec(code.derive(base, size, patches, sha256, path), 30.0)
        words = out.strip().split()
        return bool(words) and words[-1].decode() == sha256
