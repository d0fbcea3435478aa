"""machine: reset(), unique_id(), reset_cause() and the REPL UART object.

``machine.UART.repl_uart()`` returns the UART object the REPL runs on (machine_uart.c);
``init(baudrate=115200, bits=8, parity=None, stop=1, *, timeout=1000, timeout_char=10,
read_buf_len=..., ide=False, from_ide=True)`` validates its arguments as machine_uart.c does
and switches the board's baud rate once the reply to the current command has gone out at the
old rate (k210sim.maixpy.console). UARTs other than the REPL's are not emulated.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import final, module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime

_TOKEN = object()
UARTHS = 4
MAX_BAUD = 0x500000
_PARITY_NAMES = ("None", "odd", "even")


def make_uart_class(rt: "Runtime") -> type:
    @final
    class UART:
        UART1, UART2, UART3, UARTHS = 0, 1, 2, UARTHS
        PARITY_ODD, PARITY_EVEN = 1, 2

        __slots__ = ("_rt", "_baud", "_bits", "_parity", "_stop")

        def __init__(self, token: object = None, rt: Any = None) -> None:
            if token is not _TOKEN:
                raise ValueError("[MAIXPY]UART: only the REPL UART is emulated")
            self._rt = rt
            self._baud = rt.console.pending_baud or rt.ctx.uart.baud
            self._bits, self._parity, self._stop = 8, 0, "1"

        def __repr__(self) -> str:
            return ("[MAIXPY]UART%d:( baudrate=%u, bits=%u, parity=%s, stop=%s)"
                    % (UARTHS + 1, self._baud, self._bits, _PARITY_NAMES[self._parity], self._stop))

        @staticmethod
        def repl_uart() -> "UART":
            return rt.repl_uart_obj

        def init(self, baudrate: Any = 115200, bits: Any = 8, parity: Any = None, stop: Any = None,
                 *, timeout: Any = 1000, timeout_char: Any = 10, read_buf_len: Any = 0,
                 ide: Any = False, from_ide: Any = True) -> None:
            baud = int(baudrate)
            if baud < 0 or baud > MAX_BAUD:
                raise ValueError("[MAIXPY]UART:invalid baudrate")
            if not 5 <= int(bits) <= 8:
                raise ValueError("[MAIXPY]UART:invalid data bits")
            par = 0 if parity is None else int(parity)
            if not 0 <= par <= 2:
                raise ValueError("[MAIXPY]UART:invalid parity")
            stop_bits = 1.0 if stop is None or float(stop) == 0 else float(stop)
            if stop_bits not in (1.0, 1.5, 2.0):
                raise ValueError("[MAIXPY]UART:invalid stop bits")
            if int(bits) != 8 or par != 0:
                raise ValueError("[MAIXPY]UART:invalid param")
            if baud == 0:
                raise ValueError("[MAIXPY]UART:invalid baudrate")
            self._baud, self._bits, self._parity = baud, int(bits), par
            self._stop = {1.0: "1", 1.5: "1.5", 2.0: "2"}[stop_bits]
            with self._rt.native():
                self._rt.console.request_baud(baud)

        def write(self, data: Any) -> int:
            payload = data.encode() if isinstance(data, str) else bytes(memoryview(data))
            self._rt.write_raw(payload)
            return len(payload)

        def read(self, n: int = -1) -> bytes:
            rt = self._rt
            with rt.native():
                if n is None or n < 0:
                    return rt.console.read_some(user=True, timeout=0.05)
                return rt.console.read_exact(int(n), user=True)

        def any(self) -> int:
            return self._rt.console.buffered()

        def deinit(self) -> None:
            return None

    return UART


def build(rt: "Runtime", name: str):
    uart_cls = make_uart_class(rt)
    rt.repl_uart_obj = uart_cls(_TOKEN, rt)
    uid = hashlib.sha256(b"k210-hil uid:" + str(rt.ctx.state_dir).encode()).digest()

    def reset() -> None:
        with rt.native():
            rt.board.reboot("machine.reset()")

    def unique_id() -> bytes:
        return uid

    def reset_cause() -> int:
        return rt.board.reset_cause

    return module(name, UART=uart_cls, reset=reset, unique_id=unique_id, reset_cause=reset_cause,
                  PWRON_RESET=0, HARD_RESET=0, WDT_RESET=1, WDT1_RESET=2, SOFT_RESET=3)
