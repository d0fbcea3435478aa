"""The [qemu] table of a rig file: a board emulated by QEMU running agent firmware.

    [qemu]
    firmware = "reference"          # build agent/ + agent/reference/ (cached in .hil/agent-build)
    # elf = "builds/fw.elf"         # or run this image (built for the same virt memory map)
    # binary = "qemu-system-riscv64"
    # flash_image = "flash.bin"     # at flash 0 on a fresh board (default: the firmware image,
    #                               # where kflash would have written it)

Such a rig takes ``serial.port = "qemu"`` (the emulator's console socket, known once it runs)
and ``power.driver = "qemu"``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hil.tomlcheck import Table

QEMU_PORT = "qemu"
FIRMWARES = ("reference",)


@dataclass(frozen=True)
class QemuRigSpec:
    firmware: str = "reference"     # which firmware to build, when elf is not given
    elf: Path | None = None         # a prebuilt image instead (absolute, resolved)
    binary: str = "qemu-system-riscv64"
    flash_image: Path | None = None  # written at flash 0 when the board's state is created


def parse_qemu(table: Table, rig_dir: Path) -> QemuRigSpec:
    firmware = table.take_choice("firmware", FIRMWARES, "reference")
    elf = _path(table, "elf", rig_dir)
    binary = table.take("binary", str, "qemu-system-riscv64")
    if not binary:
        raise table.fail("binary", "must name the QEMU executable, e.g. qemu-system-riscv64")
    flash_image = _path(table, "flash_image", rig_dir)
    if flash_image is not None and flash_image.stat().st_size > 16 * 1024 * 1024:
        raise table.fail("flash_image", f"{flash_image} is larger than the 16 MiB flash")
    table.done()
    return QemuRigSpec(firmware=firmware, elf=elf, binary=binary, flash_image=flash_image)


def _path(table: Table, key: str, rig_dir: Path) -> Path | None:
    text = table.take(key, str, "")
    if not text:
        return None
    path = (rig_dir / os.path.expanduser(text)).resolve()
    if not path.is_file():
        raise table.fail(key, f"{text!r}: no such file ({path})")
    return path
