"""Models load from flash at an offset: written over ISP, then ``kpu.load(offset)``.

- A model at the rig's ``storage.model_offset`` and another at ``storage.second_model_offset``,
  each written with the K210 ISP protocol (``flash_models.write``: the board reboots into its
  firmware afterwards), checked on the board by reading the flash back (Maix.utils.flash_read,
  sha256 against the manifest), loaded, freed; load time recorded as
  ``load_time_flash_<fixture>_s``. The fixture is the biggest committed model whose version the
  build loads at the first offset and the smallest of the newest version it loads at the second.
- Offsets that hold no model get the firmware's error from the profile: an erased region (the
  bytes there are read first; a region that is not erased is erased by writing 0xFF over ISP), an
  offset inside the firmware image (kpu_support.INSIDE_FIRMWARE_OFFSET, checked to hold firmware
  bytes, not a model), and offsets that are not > 0 (0 and -1: ``errors.model_addr``).
  Which error a region gets follows from its bytes, as the loader decides
  (hil.kmodel.verdict.maixpy_load_error with the profile's load_versions), unless the profile's
  [cases] says otherwise (offset_erased, offset_inside_firmware, offset_zero, offset_negative).
  After each refusal no heap is left behind and the board still loads a good model.

Writes go through the firmware where it writes flash itself (a C agent), else over ISP.
"""
from __future__ import annotations

import time

import pytest

from hil.kmodel.fixtures import committed_loadable, ensure_fixture, get_fixture
from hil.kmodel.verdict import maixpy_load_error

from . import kpu_support as ks

ERASED = "broken_erased_flash"     # 4 KiB of 0xFF: what an erased flash sector reads as


def _fixture_for(firmware, slot: str):
    newest = max(firmware.kpu.load_versions)
    ok = committed_loadable(firmware.kpu.load_versions, None if slot == "model_offset" else newest)
    if not ok:
        ks.fail(f"no committed fixture of a version {firmware.name} loads ({ks.versions(firmware)})")
    return ok[-1] if slot == "model_offset" else ok[0]


def _offset_rejected(checks, flash_models, firmware, offset: int, case: str, what: str) -> None:
    head = flash_models.head(offset, 64)
    key = maixpy_load_error(head, firmware.kpu.load_versions, source=f"flash@{offset:#x}")
    if key is None:
        ks.fail(f"{what}: the bytes at {offset:#x} look like a loadable model header "
                f"({head[:16].hex()}); this case needs an offset that holds no model")
    ks.check_case(checks, firmware.call_case(case, key), offset, f"kpu.load({offset:#x}), {what}")


def test_erased_offset_rejected(flash_models, firmware, rig, checks) -> None:
    offset = rig.storage.second_model_offset
    erased = ensure_fixture(ERASED).read_bytes()
    flash_models.ensure(offset, erased)
    assert flash_models.head(offset, 64) == erased[:64], f"flash at {offset:#x} is not erased after writing 0xFF"
    assert get_fixture(ERASED).expected_error(firmware.kpu.load_versions) is not None
    _offset_rejected(checks, flash_models, firmware, offset, "offset_erased", "an erased region")


@pytest.mark.parametrize("slot", ["model_offset", "second_model_offset"])
def test_model_loads_from_flash(device, kpu, flash_models, firmware, rig, measure, slot) -> None:
    offset = getattr(rig.storage, slot)
    fx = _fixture_for(firmware, slot)
    data = ensure_fixture(fx.name).read_bytes()
    flash_models.write(offset, data)
    got = flash_models.sha256(offset, len(data))
    assert got == fx.sha256, (f"flash at {offset:#x} holds sha256 {got[:16]}... after writing {fx.name} over ISP, "
                              f"expected {fx.sha256[:16]}...")
    before = device.memory().sys_heap_free
    t0 = time.monotonic()
    handle = kpu.load(offset)
    elapsed = time.monotonic() - t0
    kpu.deinit(handle)
    after = device.memory().sys_heap_free
    measure(f"load_time_flash_{fx.name}_s", elapsed, "s")
    measure(f"sys_heap_free_before_flash_{fx.name}_bytes", before, "bytes")
    measure(f"sys_heap_free_after_flash_{fx.name}_bytes", after, "bytes")


def test_offset_inside_firmware_rejected(flash_models, firmware, checks) -> None:
    offset = ks.INSIDE_FIRMWARE_OFFSET
    head = flash_models.head(offset, 64)
    assert head != b"\xff" * len(head), (f"flash at {offset:#x} is erased: no firmware image there? "
                                         f"(this case needs an offset inside the firmware)")
    _offset_rejected(checks, flash_models, firmware, offset, "offset_inside_firmware", "inside the firmware image")


@pytest.mark.parametrize("offset", [0, -1], ids=["zero", "negative"])
def test_offset_not_positive_rejected(firmware, checks, offset) -> None:
    ks.check_case(checks, firmware.call_case("offset_zero" if offset == 0 else "offset_negative"), offset,
                  f"kpu.load({offset})")
