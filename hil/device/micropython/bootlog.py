"""What a MaixPy (re)boot looks like on the wire: the one reboot detector.

Sources, sipeed/MaixPy-v1 @ 973361c0d: components/micropython/port/src/maixpy_main.c prints
``[MAIXPY] Pll0:freq:`` first at every hard boot (line 686) and ``[MaixPy]: soft reboot`` on a soft
one (line 650); the friendly REPL's banner, ``MicroPython <tag> on <date>; <board> with <mcu>``,
comes from pyexec_friendly_repl in the MicroPython core that commit pins (components/micropython/core
@ ced340d7, lib/utils/pyexec.c). ``[MaixPy] init end`` is commented out at that commit (line 587):
builds that print it tell us boot.py/main.py start now; others are waited for by banner alone.
"""
from __future__ import annotations

import re

BANNER_RE = re.compile(rb"MicroPython (v\S+) on (\S+); ([^\r\n]*)\r?\n")
INIT_END = re.compile(rb"\[MaixPy\] init end")
PROMPT = b">>> "
# Seen where the reply to code should be, the board rebooted under it. (A program that prints
# these very lines itself is taken for a reboot too.)
REBOOT_MARKERS = (b"[MAIXPY] Pll0:freq:", b"[MaixPy] init end", b"soft reboot\r\n")


def rebooted_in(data: bytes) -> bool:
    """Whether ``data`` holds the start of a boot log."""
    return any(marker in data for marker in REBOOT_MARKERS)
