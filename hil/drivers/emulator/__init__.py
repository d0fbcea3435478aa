"""Emulated boards: a rig table (``[qemu]``) describing a board the framework runs itself.

One module per emulator; each declares its name (the rig table and the word ``serial.port``
takes), its TOML keys (hil.drivers.schema.Key) and the power driver that starts and stops it,
and registers itself with ``EMULATORS``. rig.py reads the table through the registry; the power
driver named there starts the emulator when the board is opened (``PowerDriver.start``).
"""
from hil.drivers.emulator.base import EMULATORS, Emulator, EmulatorSpec, parse_emulator

__all__ = ["EMULATORS", "Emulator", "EmulatorSpec", "parse_emulator"]
