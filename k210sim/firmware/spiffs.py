"""statvfs("/flash"): the SPIFFS figures MaixPy reports (vfs_spiffs.c spiffs_vfs_statvfs).

sipeed/MaixPy-v1@973361c0d components/micropython/port/src/standard_lib/uos/vfs_spiffs.c
l.439-468: (block, block, total/block, (total-used)/block, same, 0, 0, 0, 0, SPIFFS_OBJ_NAME_LEN)
with CONFIG_SPIFFS_LOGICAL_BLOCK_SIZE 0x20000, LOGICAL_PAGE_SIZE 0x1000, SPIFFS_SIZE 0x300000,
OBJ_NAME_LEN 128 (projects/maixpy_k210/config_defaults.mk). SPIFFS_info (pellepl/spiffs
spiffs_hydrogen.c) counts data pages: (blocks - 2) * (pages per block - lookup pages) + 1, of
page size minus the 5-byte page header: 683 pages of 4091 bytes, 21 blocks. ``used`` is the
allocated pages: per file its object index page plus its data pages (the extra index pages of
files over ~8 MB and deleted-but-not-collected pages are not modelled: UNCONFIRMED).
"""
from __future__ import annotations

BLOCK = 0x20000
PAGE = 0x1000
SIZE = 0x300000
NAME_LEN = 128
DATA_PAGE = PAGE - 5
PAGES_PER_BLOCK = BLOCK // PAGE
LOOKUP_PAGES = max(1, PAGES_PER_BLOCK * 2 // PAGE)
TOTAL_PAGES = (SIZE // BLOCK - 2) * (PAGES_PER_BLOCK - LOOKUP_PAGES) + 1
TOTAL = TOTAL_PAGES * DATA_PAGE


def pages_for(size: int) -> int:
    return 1 + (size + DATA_PAGE - 1) // DATA_PAGE


def statvfs(file_sizes: list[int]) -> tuple:
    used = min(sum(pages_for(s) for s in file_sizes), TOTAL_PAGES) * DATA_PAGE
    free = (TOTAL - used) // BLOCK
    return (BLOCK, BLOCK, TOTAL // BLOCK, free, free, 0, 0, 0, 0, NAME_LEN)
