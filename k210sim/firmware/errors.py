"""How a firmware service reports what the firmware does besides returning a value.

``Raise`` is the MicroPython exception the C code raises (``mp_raise_ValueError`` and friends):
a class name and the exact text, plain data, so an interpreter in another process can raise its
own exception from it. ``CpuFault`` is a trap the C code causes (a load through NULL): the
board prints the SDK's core dump and stops until a reset; it derives from BaseException so no
``except Exception`` in emulated code can swallow it.
"""
from __future__ import annotations


class Raise(Exception):
    """The firmware raises ``exc_type(text)``; ``errno`` is set for OSError(errno)."""

    def __init__(self, exc_type: str, text: str = "", errno: int | None = None) -> None:
        super().__init__(f"{exc_type}: {text}" if text else exc_type)
        self.exc_type = exc_type
        self.text = text
        self.errno = errno

    def as_reply(self) -> dict:
        return {"raise": self.exc_type, "text": self.text, "errno": self.errno}


class CpuFault(BaseException):
    """A CPU trap: ``reason`` as dump_core names it ("fault load"), where it happened."""

    def __init__(self, reason: str, epc_site: str = "", cause: int = 5) -> None:
        super().__init__(f"{reason} in {epc_site}" if epc_site else reason)
        self.reason = reason
        self.epc_site = epc_site
        self.cause = cause
