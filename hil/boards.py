"""Board catalogue: how each K210 board wires its USB-serial modem lines, and what it carries.

Reset wiring (kflash 1.1.6's reset sequences, vowstar/kflash.py @ 550828c7 kflash.py l.811-914). Each board drives its RESET
(EN) pin and its BOOT (IO16) pin from the USB-UART's DTR and RTS through an auto-reset circuit.
We model that circuit as the two cross-coupled transistors found on ESP-style boards
(UNCONFIRMED against Sipeed's schematics; this is the one place that guess lives):

    RESET is held low  iff  reset_line is asserted and boot_line is not
    BOOT  is held low  iff  boot_line  is asserted and reset_line is not

This is the only reading consistent with all of kflash 1.1.6's sequences *and* with the fact
that a plain pyserial open (which asserts both DTR and RTS) leaves a Maix board running. The
board boots into the ISP ROM when RESET is released while BOOT is low, else into the firmware.

RESET is released through an RC on EN: the chip leaves reset RESET_SETTLE_S after the line lets
go, and samples BOOT then. This is why kflash's "release reset, then pull BOOT low" order (two
separate ioctls) still enters the ISP ROM, and why any reset pulse, however short, restarts the
chip.

``dan`` wiring (Maix Bit, Maix Dock, Dan Dock): RTS is the reset line, DTR the boot line.
``kd233`` wiring (KD233, Maix Go, Maixduino): DTR is the reset line, RTS the boot line.
"""
from __future__ import annotations

from dataclasses import dataclass

# One step: (dtr, rts) asserted states, applied DTR first then RTS unless the step says
# otherwise, then a pause. True = asserted (pyserial setDTR(True)).
Step = tuple[str, bool, str, bool]   # ("dtr", value, "rts", value) in the order kflash sets them

STEP_PAUSE_S = 0.1  # kflash sleeps 0.1 s after each step
RESET_SETTLE_S = 0.01  # RC delay on EN before the chip runs and samples BOOT (UNCONFIRMED value)

# kflash 1.1.6 sequences, line by line in the order kflash writes them (l.811-914).
SEQUENCES: dict[str, tuple[Step, ...]] = {
    "isp_kd233": (("dtr", False, "rts", False), ("dtr", True, "rts", False), ("rts", True, "dtr", False)),
    "boot_kd233": (("dtr", False, "rts", False), ("dtr", True, "rts", False), ("rts", False, "dtr", False)),
    "isp_dan": (("dtr", False, "rts", False), ("dtr", False, "rts", True), ("rts", False, "dtr", True)),
    "boot_dan": (("dtr", False, "rts", False), ("dtr", False, "rts", True), ("rts", False, "dtr", False)),
    "boot_maixgo": (("dtr", False, "rts", False), ("rts", False, "dtr", True), ("rts", False, "dtr", False)),
}

USB_CH340 = (0x1A86, 0x7523)      # WCH CH340 (older Maix Bit, Maix Dock)
USB_CH552_FT2232 = (0x0403, 0x6010)  # Sipeed's CH552 firmware presenting as FT2232 (Maix Go, Maixduino, newer Bit)


@dataclass(frozen=True)
class BoardSpec:
    name: str                 # our name, used in rig files
    title: str                # marketing name
    kflash_board: str         # kflash -B value
    wiring: str               # "dan" or "kd233": which modem line is RESET
    isp_sequence: str         # key into SEQUENCES: reset into the ISP ROM
    boot_sequence: str        # key into SEQUENCES: reset into the firmware
    flash_size: int           # bytes of SPI NOR flash
    usb_ids: tuple[tuple[int, int], ...]
    sd_slot: bool = True

    @property
    def reset_line(self) -> str:
        return "rts" if self.wiring == "dan" else "dtr"

    @property
    def boot_line(self) -> str:
        return "dtr" if self.wiring == "dan" else "rts"

    def pins(self, dtr: bool, rts: bool) -> tuple[bool, bool]:
        """(reset_held, boot_low) for asserted line states, through the auto-reset circuit."""
        reset_asserted = rts if self.wiring == "dan" else dtr
        boot_asserted = dtr if self.wiring == "dan" else rts
        return (reset_asserted and not boot_asserted, boot_asserted and not reset_asserted)


MIB16 = 16 * 1024 * 1024

BOARDS: dict[str, BoardSpec] = {
    b.name: b for b in (
        BoardSpec("maix-bit", "Sipeed Maix Bit", "bit", "dan", "isp_dan", "boot_dan", MIB16,
                  (USB_CH340, USB_CH552_FT2232)),
        BoardSpec("maix-dock", "Sipeed Maix Dock (M1/M1W)", "dan", "dan", "isp_dan", "boot_dan", MIB16,
                  (USB_CH340,)),
        BoardSpec("maix-go", "Sipeed Maix Go", "goE", "kd233", "isp_kd233", "boot_maixgo", MIB16,
                  (USB_CH552_FT2232,)),
        BoardSpec("maixduino", "Sipeed Maixduino", "maixduino", "kd233", "isp_kd233", "boot_maixgo",
                  MIB16, (USB_CH552_FT2232,)),
        BoardSpec("kd233", "Kendryte KD233", "kd233", "kd233", "isp_kd233", "boot_kd233", MIB16,
                  (USB_CH340,)),
    )
}


def get_board(name: str) -> BoardSpec:
    try:
        return BOARDS[name]
    except KeyError:
        raise KeyError(f"unknown board {name!r} (known: {', '.join(BOARDS)})") from None
