"""Switching the REPL UART's baud for a big transfer, and back (``UART.repl_uart().init(...)``).

A failed switch falls back to the slow baud with a note in the serial log: the transfer goes on
at line rate. The program run on the board is hil.device.micropython.code.transfer.SWITCH.
"""
from __future__ import annotations

import time
from typing import Callable

from hil.device.micropython.code import transfer as board_code
from hil.device.micropython.repl import Repl, parse_traceback
from hil.errors import ReplError, ReplProtocolError, TransferError

BAUD_SETTLE_S = 0.1   # a pty's baud change reaches the simulator by polling (about 50 ms)
# UNCONFIRMED: MaixPy's REPL UART receive ring at boot. 512 bytes is a conservative guess; the
# transfer never puts more than that in flight at the slow baud.
BOOT_RX_BUFFER = 512


class FastBaud:
    """Context: the REPL UART at ``baud`` (0: stay slow) for one transfer, then back.
    ``switched(baud, running)`` hears the baud the transfer runs at, and when it has ended."""

    def __init__(self, repl: Repl, baud: int, fast_rx: int, slow_rx: int,
                 switched: Callable[[int, bool], None]) -> None:
        self.repl = repl
        self.baud = baud
        self.fast_rx = fast_rx
        self.slow_rx = slow_rx
        self.switched = switched
        self.slow = repl.console.link.baud
        self.active = False

    def __enter__(self) -> "FastBaud":
        if self.baud:
            self.active = switch_baud(self.repl, self.baud, self.fast_rx)
        self.switched(self.baud if self.active else self.slow, True)
        return self

    def __exit__(self, *exc: object) -> None:
        link = self.repl.console.link
        self.switched(self.slow, False)
        if self.active and link.baud != self.slow:
            if not switch_baud(self.repl, self.slow, self.slow_rx):
                raise TransferError(f"{link.url}: could not switch the REPL back to {self.slow} baud")


def switch_baud(repl: Repl, baud: int, rxbuf: int) -> bool:
    """Switch the board's REPL UART and then the host to ``baud``; verify with a round trip.

    The board answers the command at the old baud (the exact moment of the switch on a real
    board is UNCONFIRMED; the simulator switches once the reply has left), so the host reads
    the whole reply, then switches. A reply garbled by a board that switched at once is
    tolerated: the round trip at the new baud decides. On failure the host returns to the old
    baud (asking the board to, if it did switch) and we carry on slowly, with a note.
    """
    link = repl.console.link
    old = link.baud
    if baud == old:
        return True
    link.note(f"switching the REPL UART from {old} to {baud} baud")
    try:
        result = repl.exec_raw(board_code.SWITCH.format(baud=baud, rxbuf=rxbuf), 3.0)
        if result.stderr:
            link.note(f"baud switch refused by the board: {parse_traceback(result.stderr)}; staying at {old}")
            return False
    except ReplProtocolError as exc:
        link.note(f"reply to the baud switch garbled ({exc}); checking at {baud}")
        repl.forget()
    link.set_baud(baud)
    time.sleep(BAUD_SETTLE_S)
    try:
        if repl.exec(board_code.BAUD_CHECK, 3.0) == board_code.BAUD_CHECK_REPLY:
            return True
        raise ReplProtocolError("round trip at the new baud garbled")
    except (ReplProtocolError, ReplError) as exc:
        link.note(f"baud switch to {baud} failed ({exc}); back to {old}")
    repl.forget()
    link.set_baud(old)
    time.sleep(BAUD_SETTLE_S)
    try:
        repl.enter_raw(tries=2, timeout=1.0)
        return False      # the board never left the old baud
    except ReplProtocolError:
        pass
    link.set_baud(baud)   # the board did switch: ask it to come back
    time.sleep(BAUD_SETTLE_S)
    try:
        repl.enter_raw(tries=2, timeout=1.0)
        repl.exec_raw(board_code.SWITCH.format(baud=old, rxbuf=BOOT_RX_BUFFER), 3.0)
    except ReplProtocolError:
        pass
    link.set_baud(old)
    time.sleep(BAUD_SETTLE_S)
    try:
        repl.enter_raw(tries=2, timeout=1.0)
    except ReplProtocolError as exc:
        raise TransferError(f"{link.url}: lost the board while switching to {baud} baud: {exc}") from None
    return False
