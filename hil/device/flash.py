"""Models in the board's SPI flash: written by the firmware itself where it can (a C agent's FPUT,
no reboot), else over ISP by the lifecycle; read back on the board.

``flash.write(offset, data)`` writes; over ISP the board reboots into its firmware (the lifecycle
announces it); ``write_lead(offset, model)`` writes only the part of a v3 model the loader
interprets (hil.kmodel.lead: what a memory probe needs, without a multi-MB ISP write);
``head``/``sha256`` read the flash back through the firmware.
"""
from __future__ import annotations

from hil.device.api import Device, Unsupported
from hil.kmodel.lead import flash_lead


class FlashModels:
    def __init__(self, device: Device) -> None:
        self.device = device
        self.lifecycle = device.lifecycle

    def write(self, offset: int, data: bytes) -> None:
        try:
            self.device.flash_write(offset, data)
        except Unsupported:
            self.lifecycle.flash_data(offset, data)

    def write_lead(self, offset: int, model: bytes) -> bytes:
        """Write the lead of ``model`` at ``offset``; the bytes written."""
        lead = flash_lead(model)
        self.write(offset, lead)
        return lead

    def ensure(self, offset: int, data: bytes, compare: int = 64) -> bool:
        """Write ``data`` unless the flash already starts with its first ``compare`` bytes;
        whether it wrote."""
        if self.head(offset, compare) == data[:compare]:
            return False
        self.write(offset, data)
        return True

    def head(self, offset: int, n: int = 64) -> bytes:
        """The first ``n`` bytes at ``offset``, read on the board."""
        return self.device.flash_read(offset, n)

    def sha256(self, offset: int, size: int) -> str:
        return self.device.flash_sha256(offset, size)
