"""The domain drivers of one device, made once per board: what the suites' fixtures hand out.

``Drivers(device, profile)``: ``kpu`` (the flavour's KPU driver), ``files`` (the file cache),
``models`` (manifest models on the board), ``flash`` (models at flash offsets) and ``edges``
(memory edges measured this session).
"""
from __future__ import annotations

from typing import Any

from hil.device.api import Device
from hil.device.files import FileCache
from hil.device.flash import FlashModels
from hil.device.memory import MemoryEdges
from hil.device.models import ModelStore


class Drivers:
    def __init__(self, device: Device, profile: Any) -> None:
        self.device = device
        self.kpu = device.kpu
        self.files = FileCache(device)
        self.models = ModelStore(device, self.files, profile)
        self.flash = FlashModels(device)
        self.edges = MemoryEdges()
