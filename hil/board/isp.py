"""Reflashing over the K210 ISP, part of the lifecycle (hil.board.lifecycle.Lifecycle mixes it in).

The link is closed while the flasher has the port (state ISP); the board then reboots into its
firmware, announced as ``rebooted(FLASH_FIRMWARE)`` (another build: everything probed before is
probed again) or ``rebooted(FLASH_DATA)`` (a model written at an offset).

After the ISP reboot the banner may have been printed to nobody: a USB-serial driver with no
reader, ser2net, and an RFC 2217 server all drop it. So the banner is awaited briefly; if it
does not come but the REPL answers, the firmware is running and a soft reset gives a fresh
banner to read the version from. Only a board that neither prints nor answers gets the whole
boot timeout.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

from hil.board.state import FLASH_DATA, FLASH_FIRMWARE, RebootCause, State
from hil.errors import BootTimeout

AFTER_ISP_BANNER_S = 3.0   # how long to wait for a banner that may have gone out unread


class IspTransitions:
    """Mixin of Lifecycle: ``flash_firmware``, ``flash_data``, ``flash_rig_image``."""

    def _flasher(self, progress: Any = None) -> Any:
        from hil.isp.flasher import IspFlasher   # lazy: only rigs that flash need the ISP client
        enter = getattr(self.power, "enter_isp", None)   # a power driver that can hold BOOT itself
        self.link.close()
        self.events.enter(State.ISP)
        try:
            return IspFlasher(self.port_url, self.rig.board, self.rig.serial.baud,
                              self.rig.serial.isp_baud, log=self.note, enter_isp=enter, progress=progress)
        except BaseException:
            self.events.enter(State.UNKNOWN)
            self.reconnect(quietly=True)
            raise

    def _flash(self, write: Callable[[Any], None], cause: RebootCause, step: Any = None) -> str:
        # the image's progress is the step's (what the terminal shows); the stub's upload is not
        progress = None if step is None else (
            lambda label, done, total: step.progress(done, total) if label != "stub" else None)
        flasher = self._flasher(progress)
        try:
            write(flasher)
            flasher.reboot()
        except BaseException:
            flasher.close()
            self.events.enter(State.UNKNOWN)
            self.reconnect(quietly=True)   # the REPL's port open again; the ladder resets the board
            raise
        flasher.close()
        self.reconnect()
        self.events.rebooted(cause)
        first = min(self.boot_timeout, AFTER_ISP_BANNER_S)
        try:
            version = self.wait_boot(first)
        except BootTimeout:
            if not self.responsive():
                version = self.wait_boot(max(self.boot_timeout - first, 1.0))
            else:
                self.note(f"no boot banner within {first:.1f} s of the ISP reboot (printed while the "
                          f"port was closed); the REPL answers: soft reset for a fresh banner")
                return self.soft_reset()
        self.boot.command_mode()
        return version

    def flash_firmware(self, image: Path) -> str:
        """Write a firmware build at flash 0 over ISP, reboot, wait for its banner."""
        with self.steps("flash firmware", image=str(image), show=True) as step:
            self.note(f"flashing firmware {image}")
            return self._flash(lambda flasher: flasher.flash_firmware(image), FLASH_FIRMWARE, step)

    def flash_data(self, address: int, data: bytes) -> None:
        """Write raw bytes (a kmodel) at a flash address over ISP, then boot the firmware again."""
        with self.steps("flash data", address=address, size=len(data), show=True) as step:
            self.note(f"flashing {len(data)} bytes at {address:#x}")
            self._flash(lambda flasher: flasher.flash_data(address, data), FLASH_DATA, step)

    def flash_rig_image(self) -> bool:
        """Flash [firmware].image if the rig names one (once per image when flash_image_once)."""
        image = self.rig.firmware.image
        if image is None:
            return False
        digest = hashlib.sha256(image.read_bytes()).hexdigest()
        stamp = self.results / "flash-stamps" / f"{self.rig.name}.sha256"
        if self.rig.firmware.flash_image_once and stamp.is_file() and stamp.read_text().strip() == digest:
            self.note(f"firmware {image.name} already flashed (sha256 {digest[:12]}); not flashing again")
            return False
        self.flash_firmware(image)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest + "\n")
        return True
