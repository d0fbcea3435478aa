"""The adapters' one door into the firmware: plain data out, a value or the firmware's exception in.

``call(rt, op, **args)`` runs ``rt.fw.call(op, args)`` as native ("C") code and turns the reply
into what MicroPython user code sees: the value; the exception the firmware raised, with its
exact text; or, after a CPU trap, the core dump on the console and a board that stops here
(ProgramHalted unwinds user code; k210sim.maixpy.firmware then spins until a reset).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k210sim.maixpy.mperrors import mp_oserror
from k210sim.program import ProgramHalted

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime

EXCEPTIONS = {"ValueError": ValueError, "TypeError": TypeError, "OSError": OSError,
              "MemoryError": MemoryError, "RuntimeError": RuntimeError,
              "NotImplementedError": NotImplementedError, "IndexError": IndexError}


def to_exception(reply: dict) -> BaseException:
    kind = EXCEPTIONS.get(reply.get("raise", ""), RuntimeError)
    if kind is OSError and reply.get("errno") is not None:
        return mp_oserror(int(reply["errno"]))
    text = reply.get("text") or ""
    return kind(text) if text else kind()


def call(rt: "Runtime", op: str, **args: Any) -> Any:
    with rt.native():
        reply = rt.fw.call(op, args)
    if "ok" in reply:
        return reply["ok"]
    if "fault" in reply:
        from k210sim.firmware.errors import CpuFault
        rt.board.trap(CpuFault(reply["fault"], epc_site=reply.get("site", "")))
        raise ProgramHalted()
    raise to_exception(reply)
