"""The KPU driver of MaixPy: ``kpu.load`` from a path or a flash offset, deinit, forward.

Tasks live on the board in a dict (``_hil_kpu``, hil.device.micropython.code.device) keyed by
the host's handle id. Errors come back typed: a failed load is KpuLoadError with the code the
profile reads in its text, MemoryOverflow for the profile's no-memory text (or ERR_NO_MEM);
another call that raised is KpuError(text, exc_type, call). A reboot drops every handle.
"""
from __future__ import annotations

from typing import Any

from hil.device.api import KpuDriver, KpuHandle
from hil.device.micropython.code import device as code
from hil.device.micropython.repl import Repl
from hil.errors import KpuError, KpuLoadError, MemoryOverflow, ReplError
from hil.steps import Steps


def ints(out: bytes, n: int, what: str) -> list[int]:
    """The last ``n`` integers a program printed; ReplError naming ``what`` otherwise."""
    fields = out.split()
    try:
        values = [int(f) for f in fields[-n:]]
    except ValueError:
        values = []
    if len(values) != n:
        raise ReplError("ValueError", f"{what}: expected {n} integers, the board printed {out[:80]!r}")
    return values


class MaixPyKpu(KpuDriver):
    def __init__(self, repl: Repl, profile: Any, steps: Steps) -> None:
        self.repl = repl
        self.profile = profile
        self.steps = steps
        self._next = 1
        self._loaded: dict[int, KpuHandle] = {}
        repl.events.subscribe(self)

    def _load_error(self, exc: ReplError, model: str) -> KpuLoadError:
        text = exc.message
        code_ = self.profile.errors.code_of(text)
        if text == self.profile.errors.no_mem or "ERR_NO_MEM" in text:
            return MemoryOverflow(text, code_, exc.exc_type, model)
        return KpuLoadError(text, code_, exc.exc_type, model)

    def load(self, source: str | int, timeout: float = 120.0) -> KpuHandle:
        if isinstance(source, bool) or not isinstance(source, (str, int)):
            raise TypeError(f"kpu load takes a path or a flash offset, not {source!r}")
        model = source if isinstance(source, str) else f"{source:#x}"
        handle = KpuHandle(self._next, model)
        self._next += 1
        with self.steps("kpu load", model=model) as step:
            try:
                self.repl.exec(code.kpu_load(handle.id, source), timeout)
            except ReplError as exc:
                error = self._load_error(exc, model)
                step.args["error"] = error.text
                raise error from None
        self._loaded[handle.id] = handle
        return handle

    def _call(self, what: str, program: str, timeout: float) -> str:
        try:
            return self.repl.exec(program, timeout).decode("utf-8", "replace").strip()
        except ReplError as exc:
            raise KpuError(exc.message, exc.exc_type, what) from None

    def deinit(self, handle: KpuHandle, keep_task: bool = False, timeout: float = 30.0) -> str:
        with self.steps("kpu deinit", model=handle.model):
            out = self._call("kpu.deinit", code.kpu_deinit(handle.id, keep_task), timeout)
        self._loaded.pop(handle.id, None)
        return out

    def forward(self, handle: KpuHandle, data: list[float], timeout: float = 30.0) -> str:
        return self._call("kpu.forward", code.kpu_forward(handle.id, data), timeout)

    def drop(self, handle: KpuHandle) -> None:
        self.repl.exec(code.kpu_drop(handle.id))
        self._loaded.pop(handle.id, None)

    def deinit_all(self) -> int:
        out = self.repl.exec(code.KPU_DEINIT_ALL, 60.0)
        self._loaded.clear()
        return ints(out, 1, "kpu deinit_all")[0]
