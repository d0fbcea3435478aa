"""/flash/freq.conf: MaixPy's board config (config_data_t), the file gc_heap_size(n) writes.

sipeed/MaixPy-v1@973361c0d components/micropython/port/include/mpconfigboard.h l.19-47:
``FREQ_STORE_FILE_NAME "/freq.conf"`` in the SPIFFS root (/flash), holding
``{u32 freq_cpu; u32 freq_pll1; u8 kpu_div; u32 gc_heap_size}`` (16 bytes on RV64, 3 padding
bytes after kpu_div, written as whatever the stack held: modelled as zeros, UNCONFIRMED).
maixpy_main.c load_config_from_spiffs (l.302-339): defaults freq_cpu 400 MHz
(CONFIG_CPU_DEFAULT_FREQ), freq_pll1 400 MHz, kpu_div 1, gc_heap_size CONFIG_MAIXPY_GC_HEAP_SIZE;
a missing file is created with the defaults at every boot, so /flash/freq.conf always exists;
a 0 gc_heap_size reads as the default. save_config_to_spiffs (l.286-300) writes the struct
without truncating.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

FILE = "freq.conf"
LAYOUT = struct.Struct("<IIB3xI")
FREQ_CPU_DEFAULT = 400_000_000
FREQ_PLL1_DEFAULT = 400_000_000
FREQ_CPU_MAX, FREQ_CPU_MIN = 600_000_000, 26_000_000
FREQ_PLL1_MAX, FREQ_PLL1_MIN = 1_200_000_000, 26_000_000


@dataclass
class BoardConfig:
    freq_cpu: int
    freq_pll1: int
    kpu_div: int
    gc_heap_size: int

    def pack(self) -> bytes:
        return LAYOUT.pack(self.freq_cpu & 0xFFFFFFFF, self.freq_pll1 & 0xFFFFFFFF,
                           self.kpu_div & 0xFF, self.gc_heap_size & 0xFFFFFFFF)


def load(flash_root: Path, gc_default: int) -> BoardConfig:
    """load_config_from_spiffs: read the file, or create it with the defaults."""
    cfg = BoardConfig(FREQ_CPU_DEFAULT, FREQ_PLL1_DEFAULT, 1, gc_default)
    path = Path(flash_root) / FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        save(flash_root, cfg)
        return cfg
    except OSError:
        return cfg
    if len(raw) <= 0:
        return cfg          # "maixpy can't load freq.conf" path: the defaults stand
    raw = raw[:LAYOUT.size].ljust(LAYOUT.size, b"\0")
    cfg = BoardConfig(*LAYOUT.unpack(raw))
    cfg.freq_cpu = min(max(cfg.freq_cpu, FREQ_CPU_MIN), FREQ_CPU_MAX)
    cfg.freq_pll1 = min(max(cfg.freq_pll1, FREQ_PLL1_MIN), FREQ_PLL1_MAX)
    if cfg.kpu_div == 0:
        cfg.kpu_div = 1
    if cfg.gc_heap_size == 0:
        cfg.gc_heap_size = gc_default
    return cfg


def save(flash_root: Path, cfg: BoardConfig) -> bool:
    path = Path(flash_root) / FILE
    try:
        old = path.read_bytes() if path.exists() else b""
        data = cfg.pack()
        path.write_bytes(data + old[len(data):])
    except OSError:
        return False
    return True
