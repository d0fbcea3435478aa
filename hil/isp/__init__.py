"""K210 UART ISP client: SLIP framing, packets, the ROM and stub stages, images and kfpkg.

Public entry point: ``hil.isp.flasher.IspFlasher`` (re-exported here lazily so importing the
packet code does not pull in pyserial).
"""
from __future__ import annotations

__all__ = ["IspFlasher"]


def __getattr__(name: str):
    if name == "IspFlasher":
        from hil.isp.flasher import IspFlasher
        return IspFlasher
    raise AttributeError(name)
