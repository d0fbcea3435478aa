"""Power drivers: how a rig removes power from its board, or at least resets it.

One module per driver; each declares its name, TOML keys and capabilities (hil.drivers.power.base)
and registers itself with ``POWER``. A new driver is one new file here (or anywhere, registered
through the ``k210_hil.power_drivers`` entry-point group, or imported by a conftest.py).
"""
from hil.drivers.power.base import (POWER, PowerContext, PowerDriver, PowerSpec, RigFacts, make_power,
                                    parse_power)

__all__ = ["POWER", "PowerContext", "PowerDriver", "PowerSpec", "RigFacts", "make_power", "parse_power"]
