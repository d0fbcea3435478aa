"""utime (also ``time``): sleeps that Ctrl-C and a board halt interrupt, ticks since boot, RTC.

The RTC is set to 2000-01-01 00:00:00 at boot (maixpy_main.c rtc_timer_set), so time() counts
seconds since boot in MicroPython's 2000 epoch until set_time(). ticks_ms/us wrap at 2**30 as
MicroPython's MICROPY_PY_UTIME_TICKS_PERIOD does.
"""
from __future__ import annotations

import time as host_time
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime

TICKS_PERIOD = 1 << 30
_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def localtime(secs: int) -> tuple:
    days, rem = divmod(int(secs), 86400)
    hour, rem = divmod(rem, 3600)
    minute, sec = divmod(rem, 60)
    wday = (days + 5) % 7            # 2000-01-01 was a Saturday (Monday = 0)
    year = 2000
    while True:
        ylen = 366 if _is_leap(year) else 365
        if days < ylen:
            break
        days -= ylen
        year += 1
    yday = days + 1
    month = 1
    for i, mlen in enumerate(_MDAYS):
        mlen += 1 if i == 1 and _is_leap(year) else 0
        if days < mlen:
            break
        days -= mlen
        month += 1
    return (year, month, days + 1, hour, minute, sec, wday, yday)


def mktime(t: Any) -> int:
    year, month, mday, hour, minute, sec = (int(v) for v in tuple(t)[:6])
    days = sum(366 if _is_leap(y) else 365 for y in range(2000, year))
    days += sum(_MDAYS[:month - 1]) + (1 if month > 2 and _is_leap(year) else 0) + mday - 1
    return days * 86400 + hour * 3600 + minute * 60 + sec


def build(rt: "Runtime", name: str):
    cpu = rt.cpu
    boot = rt.board.boot_monotonic
    rtc = {"base": 0, "at": host_time.monotonic()}

    def _sleep(seconds: float) -> None:
        with rt.native():
            cpu.sleep(seconds)

    def sleep(s: Any) -> None:
        _sleep(float(s))

    def sleep_ms(ms: Any) -> None:
        _sleep(int(ms) / 1000.0)

    def sleep_us(us: Any) -> None:
        _sleep(int(us) / 1e6)

    def ticks_ms() -> int:
        return int((host_time.monotonic() - boot) * 1000) % TICKS_PERIOD

    def ticks_us() -> int:
        return int((host_time.monotonic() - boot) * 1e6) % TICKS_PERIOD

    def ticks_cpu() -> int:
        return int((host_time.monotonic() - boot) * 403e6) % TICKS_PERIOD

    def ticks_diff(a: int, b: int) -> int:
        return ((int(a) - int(b) + TICKS_PERIOD // 2) % TICKS_PERIOD) - TICKS_PERIOD // 2

    def ticks_add(a: int, delta: int) -> int:
        return (int(a) + int(delta)) % TICKS_PERIOD

    def now() -> int:
        return rtc["base"] + int(host_time.monotonic() - rtc["at"])

    def set_time(t: Any) -> None:
        rtc["base"] = mktime(t)
        rtc["at"] = host_time.monotonic()

    def _localtime(secs: Any = None) -> tuple:
        return localtime(now() if secs is None else int(secs))

    return module(name, sleep=sleep, sleep_ms=sleep_ms, sleep_us=sleep_us, ticks_ms=ticks_ms,
                  ticks_us=ticks_us, ticks_cpu=ticks_cpu, ticks_diff=ticks_diff,
                  ticks_add=ticks_add, ticks=ticks_ms, time=now, localtime=_localtime,
                  mktime=mktime, set_time=set_time)
