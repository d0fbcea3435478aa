"""Vocabulary of the KPU suites: what a firmware profile expects, said as checks that fail a test
in one line. The machinery (the KPU driver, models and files on the board, flash writes, memory
probes) is library code reached through the plugin's fixtures (kpu, device, models, files,
flash_models, memory_edges); nothing here talks to the board itself or reaches the simulator.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, NoReturn

import pytest

from hil import threshold
from hil.errors import KpuLoadError, MemoryOverflow
from hil.threshold import STEP, Edge, KiB, Loads, align_up  # noqa: F401 (the suites use them as ks.*)
from hil.units import amount, plain

KNOWN_V4_BUG = "known: this build has no kmodel v4 loader (field notes: the v4 load bug)"
# An offset inside any MaixPy image: the smallest v0.6.2 build is ~850 KB, the kflash header is
# 5 bytes, so 64 KiB in is always firmware code. The test reads the bytes there before relying on it.
INSIDE_FIRMWARE_OFFSET = 0x10000
SWITCH_CYCLES_DEFAULT = 20
SWITCH_CYCLES_ENV = "HIL_SWITCH_CYCLES"
UPLOAD_BUDGET_S = 30.0               # a fixture that takes longer to upload at the rig's baud is skipped


def fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)
    raise AssertionError("unreachable")


def versions(firmware: Any) -> str:
    return ", ".join(f"v{v}" for v in firmware.kpu.load_versions) or "none"


def upload_seconds(rig: Any, size: int) -> float:
    """Wire time of an upload at the rig's best REPL baud (10 bits a byte)."""
    return size * 10 / max(rig.serial.baud, rig.serial.fast_baud or 0)


# -- the firmware's errors, as the profile lists them ------------------------------------------------
def expected_error(firmware: Any, key: str) -> tuple[str, int | None]:
    """(exact text, code) the profile lists for an ErrorTexts key."""
    text = getattr(firmware.errors, key)
    return text, firmware.errors.code_of(text)


def check_load_error(exc: KpuLoadError, firmware: Any, key: str, what: str) -> None:
    """Fail unless the board raised exactly the profile's ``key`` error (text and code)."""
    text, code = expected_error(firmware, key)
    if exc.text != text or exc.code != code:
        fail(f"{what}: expected the {key} error {text!r} (code {code}), the board raised "
             f"{exc.exc_type}: {exc.text!r} (code {exc.code})")


def expect_load_error(kpu: Any, source: str | int, firmware: Any, key: str, what: str) -> KpuLoadError:
    """Loading ``source`` must fail with the profile's ``key`` error; returns the exception."""
    try:
        handle = kpu.load(source)
    except KpuLoadError as exc:
        check_load_error(exc, firmware, key, what)
        return exc
    kpu.deinit(handle)
    text, code = expected_error(firmware, key)
    fail(f"{what}: kpu.load({source!r}) loaded; expected the {key} error {text!r} (code {code})")


def check_no_residue(device: Any, firmware: Any, before: int, what: str) -> int:
    """Free system heap must be back to ``before`` within the profile's leak tolerance."""
    after = device.memory().sys_heap_free
    lost = before - after
    if lost > firmware.memory.leak_tolerance:
        fail(f"{what} left {lost} bytes of system heap allocated (free {before} -> {after} bytes, "
             f"tolerance {firmware.memory.leak_tolerance})")
    return after


def check_still_loads(kpu: Any, path: str, what: str) -> None:
    """The board still loads a good model (and frees it)."""
    try:
        handle = kpu.load(path)
    except KpuLoadError as exc:
        fail(f"after {what} the board no longer loads the good model {path}: {exc.exc_type}: {exc.text}")
    kpu.deinit(handle)


def load_or_overflow(kpu: Any, firmware: Any, source: str | int, what: str) -> bool:
    """True when the model loads (freed again), False on the profile's exact memory error."""
    try:
        handle = kpu.load(source)
    except MemoryOverflow as exc:
        check_load_error(exc, firmware, "no_mem", what)
        return False
    except KpuLoadError as exc:
        fail(f"{what}: expected it to load or to fail with the memory error, the board raised "
             f"{exc.exc_type}: {exc.text!r} (code {exc.code})")
    kpu.deinit(handle)
    return True


def judge(kpu: Any, firmware: Any) -> Callable[[str | int, str], bool]:
    """A memory probe's verdict (hil.device.memory): load_or_overflow on this board and build."""
    return functools.partial(load_or_overflow, kpu, firmware)


# -- measurements with a band ----------------------------------------------------------------------
def fail_outside_band(measure: Callable[..., float], name: str, value: float, unit: str,
                      band: tuple[float, float], context: str = "") -> float:
    """``measure`` with limits; a miss fails saying which side and by how much, e.g.
    "threshold_sd_bytes = 1990656 bytes, below the expected band 2150000..2300000 by 156 KiB"."""
    low, high = band
    try:
        return measure(name, value, unit, low=low, high=high)
    except pytest.fail.Exception:
        pass        # re-failed below, outside the handler, so the report shows one message
    side, by = ("below", low - value) if value < low else ("above", value - high)
    by_text = amount(by, unit, places=0)
    fail(f"{name} = {plain(value)} {unit}, {side} the expected band {plain(low)}..{plain(high)} by {by_text}"
         + (f" ({context})" if context else ""))


# -- threshold searches (hil.threshold; a contradiction fails the test in one line) ----------------
def search_from_free_heap(loads: Loads, free: int, step: int = STEP, smallest: int = 64 * KiB) -> Edge:
    try:
        return threshold.search_from_free_heap(loads, free, step, smallest)
    except threshold.ThresholdSearchError as exc:
        fail(str(exc))


def gallop_edge(loads: Loads, seed: int, step: int = STEP, floor: int = 64 * KiB,
                ceiling: int = 16 * 1024 * KiB) -> Edge:
    try:
        return threshold.gallop_edge(loads, seed, step, floor, ceiling)
    except threshold.ThresholdSearchError as exc:
        fail(str(exc))


# -- options ---------------------------------------------------------------------------------------
def switch_cycles(config: pytest.Config) -> int:
    """--switch-cycles N (an option of the hil plugin, so it works wherever the suites are
    collected from), else $HIL_SWITCH_CYCLES, else 20."""
    value = config.getoption("switch_cycles", default=None)
    if value is None:
        text = os.environ.get(SWITCH_CYCLES_ENV, "")
        try:
            value = int(text) if text else SWITCH_CYCLES_DEFAULT
        except ValueError:
            raise pytest.UsageError(f"{SWITCH_CYCLES_ENV}={text!r}: expected a whole number of cycles") from None
    if value < 1:
        raise pytest.UsageError(f"switch cycles must be >= 1, got {value}")
    return value

