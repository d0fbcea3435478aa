"""``none``: no power control; the recovery ladder stops at a soft reset."""
from __future__ import annotations

from hil.drivers.power.base import POWER, PowerDriver


@POWER.register
class NoPower(PowerDriver):
    name = "none"
    simulated = True
