"""Firmware flavours: for a profile's ``family``, the console the lifecycle boots and the device API.

A flavour class registers with ``FLAVOURS`` under the family name and, made with
``(rig, console, events)``, offers ``boot`` (hil.board.lifecycle.BootConsole), ``repl`` (its raw
REPL, or None) and ``device(lifecycle)`` (hil.device.api.Device). A new flavour (a C-SDK agent,
say) is one new module here.
"""
from hil.drivers.registry import Registry

FLAVOURS: Registry = Registry("firmware family", "hil.device.flavours", "k210_hil.device_flavours")

__all__ = ["FLAVOURS"]
