"""``[qemu]``: a K210 stand-in under ``qemu-system-riscv64 -M virt`` running C-SDK firmware with
the k210-hil agent (hil.agent.qemu runs it; the ``qemu`` power driver starts it with the board).

    [qemu]
    firmware = "reference"          # build agent/ + agent/reference/ (cached in .hil/agent-build)
    # elf = "builds/fw.elf"         # or run this image (built for the same virt memory map)
    # binary = "qemu-system-riscv64"
    # flash_image = "flash.bin"     # at flash 0 on a fresh board (default: the firmware image,
    #                               # where kflash would have written it)
"""
from __future__ import annotations

from pathlib import Path

from hil.drivers.emulator.base import EMULATORS, Emulator, rig_file
from hil.drivers.schema import Key, Options, filled
from hil.tomlcheck import Table

FIRMWARES = ("reference",)
FLASH_SIZE = 16 * 1024 * 1024


def _firmware(value: str) -> str:
    return "" if value in FIRMWARES else f"not one of: {', '.join(FIRMWARES)}"


@EMULATORS.register
class Qemu(Emulator):
    name = "qemu"
    power = "qemu"
    description = "qemu-system-riscv64 -M virt running agent firmware"
    keys = (Key("firmware", str, "reference", _firmware, help="which firmware to build when elf is not given"),
            Key("elf", str, "", help="a prebuilt firmware image to run instead (relative to the rig file)"),
            Key("binary", str, "qemu-system-riscv64", filled("qemu-system-riscv64"), help="the QEMU executable"),
            Key("flash_image", str, "", help="written at flash 0 on a fresh board (default: the firmware image)"))

    @classmethod
    def finish(cls, table: Table, options: Options, rig_dir: Path) -> Options:
        elf = rig_file(table, "elf", options.elf, rig_dir)
        flash_image = rig_file(table, "flash_image", options.flash_image, rig_dir)
        if flash_image is not None and flash_image.stat().st_size > FLASH_SIZE:
            raise table.fail("flash_image", f"{flash_image} is larger than the 16 MiB flash")
        return Options({**options, "elf": elf, "flash_image": flash_image})
