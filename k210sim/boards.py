"""The boards the simulator can be: flash size, SD slot, and how DTR/RTS reach RESET and BOOT.

Each Sipeed board drives its RESET (EN) pin and its BOOT (IO16) pin from the USB-UART's DTR and
RTS through an auto-reset circuit. It is modelled as the two cross-coupled transistors found on
ESP-style boards (UNCONFIRMED against Sipeed's schematics; this is the one place that guess
lives in the simulator):

    RESET is held low  iff  reset_line is asserted and boot_line is not
    BOOT  is held low  iff  boot_line  is asserted and reset_line is not

This is the only reading consistent with all of kflash 1.1.6's reset sequences (kflash.py
l.811-914) and with a plain pyserial open (which asserts both lines) leaving the board running.
RESET is released through an RC on EN: the chip leaves reset RESET_SETTLE_S after the line lets
go and samples BOOT then.

``dan`` wiring (Maix Bit, Maix Dock): RTS is the reset line, DTR the boot line.
``kd233`` wiring (KD233, Maix Go, Maixduino): DTR is the reset line, RTS the boot line.
"""
from __future__ import annotations

from dataclasses import dataclass

RESET_SETTLE_S = 0.01   # RC delay on EN before the chip runs and samples BOOT (UNCONFIRMED value)
MIB16 = 16 * 1024 * 1024


@dataclass(frozen=True)
class BoardSpec:
    name: str
    wiring: str               # "dan" or "kd233": which modem line is RESET
    flash_size: int = MIB16   # bytes of SPI NOR flash (GD25LQ128: Flash id 0xc8:0x17)
    sd_slot: bool = True

    def pins(self, dtr: bool, rts: bool) -> tuple[bool, bool]:
        """(reset_held, boot_low) for asserted line states, through the auto-reset circuit."""
        reset_asserted = rts if self.wiring == "dan" else dtr
        boot_asserted = dtr if self.wiring == "dan" else rts
        return (reset_asserted and not boot_asserted, boot_asserted and not reset_asserted)


BOARDS: dict[str, BoardSpec] = {b.name: b for b in (
    BoardSpec("maix-bit", "dan"),
    BoardSpec("maix-dock", "dan"),
    BoardSpec("maix-go", "kd233"),
    BoardSpec("maixduino", "kd233"),
    BoardSpec("kd233", "kd233"),
)}


def get_board(name: str) -> BoardSpec:
    try:
        return BOARDS[name]
    except KeyError:
        raise KeyError(f"unknown board {name!r} (known: {', '.join(BOARDS)})") from None
