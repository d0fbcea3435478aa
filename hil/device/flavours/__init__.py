"""Firmware flavours: for a profile's ``family``, the console the lifecycle boots and the device API.

A flavour is one module here registering a class with ``FLAVOURS`` (name = the family, as
firmware profiles spell it). Made per board with ``(rig, console, events)`` it offers:

- ``boot``: what hil.board.lifecycle.BootConsole asks for: ``silent``, ``wait_boot(timeout,
  interrupt) -> (banner, version)``, ``command_mode()``, ``answers(timeout)``,
  ``still_answers()``, ``request_soft_reset()``, ``kick(answer_s)``, ``await_reboot(timeout)``.
  Only the lifecycle calls these: it decides when to reset, the flavour says how it looks.
- ``repl``: MicroPython's raw REPL, or None (the ``repl`` fixture then skips);
- ``device(lifecycle)``: a hil.device.api.Device with its ``kpu`` (a KpuDriver).

Whatever keeps board-side state (a protocol client's mode, probed features, loaded models)
subscribes to ``events`` (hil.board.state) and drops it on ``rebooted(cause)``/``reconnected()``.
MaixPy (``maixpy.py``) and C-SDK firmware with the k210-hil agent (``csdk.py``, a line protocol
over the UART: hil.device.agent) are the two.
"""
from hil.drivers.registry import Registry

FLAVOURS: Registry = Registry("firmware family", "hil.device.flavours", "k210_hil.device_flavours")

__all__ = ["FLAVOURS"]
