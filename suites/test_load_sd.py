"""Models load from the SD card: ``kpu.load("/sd/...")`` then ``kpu.deinit``.

Every well-formed model fixture in the manifest (fixtures/models/manifest.toml) is put on
/sd/hil/ with its sha256 checked on the board, loaded and freed, with the load time and the free
system heap before and after recorded. Which of them this build must load comes from the firmware
profile (``kpu.load_versions``):

- a version the build loads: it must load;
- kmodel v4 on a build without the v4 loader: the build must give its exact version error, and
  the test is reported as xfailed with the known reason (the field notes' v4 load bug), so the old
  build shows the bug and nothing fails;
- any other version it does not load (v5 on every MaixPy-v1 build): skipped here, with a reason
  naming the test in test_load_errors.py that asserts the rejection;
- a fixture the profile's [cases] says this build fails on (an error, or a fault): held to that
  (kpu_support.check_case) instead of loaded.

Big fixtures (made on demand, ``committed = false``): memory is not what this suite tests, so those
bigger than half the profile's threshold band are left to test_memory_threshold.py (skipped with
that reason); v3 ones are written on the board, others uploaded unless the upload would take
longer than kpu_support.UPLOAD_BUDGET_S at the rig's baud (skipped, naming the time and
``serial.fast_baud``). Load times are host-side: one REPL round trip around ``kpu.load``.

Also: a model in a subdirectory, and one with a long file name (FAT long file names).
"""
from __future__ import annotations

import time

import pytest

from hil.device.models import SD_DIR
from hil.kmodel.fixtures import smallest_per_version, well_formed

from . import kpu_support as ks

SUBDIR = SD_DIR + "/models/nested"
LONG_NAME = "a_kmodel_with_a_rather_long_file_name_to_check_fat_long_file_names_0123456789abcdef.kmodel"


def _load_timed(device, kpu, path: str, measure, key: str) -> None:
    before = device.memory().sys_heap_free
    t0 = time.monotonic()
    handle = kpu.load(path)
    elapsed = time.monotonic() - t0
    kpu.deinit(handle)
    after = device.memory().sys_heap_free
    measure(f"load_time_sd_{key}_s", elapsed, "s")
    measure(f"sys_heap_free_before_sd_{key}_bytes", before, "bytes")
    measure(f"sys_heap_free_after_sd_{key}_bytes", after, "bytes")


@pytest.mark.requires_sd
@pytest.mark.parametrize("fx", well_formed(), ids=lambda f: f.name)
def test_model_loads_from_sd(device, kpu, models, firmware, rig, measure, request, fx) -> None:
    if not firmware.accepts(fx.version) and fx.version != 4:
        smallest = {f.version: f.name for f in smallest_per_version()}
        pytest.skip(f"{firmware.name} does not load kmodel v{fx.version} (loads {ks.versions(firmware)}); "
                    f"test_load_errors.py::test_unsupported_version_rejected"
                    f"[{smallest.get(fx.version, fx.name)}] asserts its exact error")
    if not fx.committed:
        half = firmware.memory.threshold_band[0] // 2
        if fx.size > half:
            pytest.skip(f"{fx.name} ({fx.size} bytes) is more than half of {firmware.name}'s threshold band "
                        f"({firmware.memory.threshold_band[0]}..): how big a model fits is "
                        f"test_memory_threshold.py's business")
        if not device.can_generate(fx.recipe) and ks.upload_seconds(rig, fx.size) > ks.UPLOAD_BUDGET_S:
            pytest.skip(f"{fx.name} ({fx.size} bytes) would take {ks.upload_seconds(rig, fx.size):.0f} s "
                        f"to upload at rig {rig.name}'s baud; set serial.fast_baud to include it")
    path = models.put(fx, f"{SD_DIR}/{fx.path.name}")
    case = firmware.fixture_case(fx)
    if case.declared and not case.loads:
        ks.check_case(request.getfixturevalue("checks"), case, path, f"{fx.name} from {path}")
        return
    if not firmware.accepts(fx.version):       # v4 on a build without the v4 loader
        ks.expect_load_error(kpu, path, firmware, "version", f"{fx.name} (kmodel v4) from {path}")
        pytest.xfail(ks.KNOWN_V4_BUG)
    _load_timed(device, kpu, path, measure, fx.name)


@pytest.mark.requires_sd
def test_model_in_subdirectory_loads(device, kpu, models, measure) -> None:
    fx = models.smallest_good()
    _load_timed(device, kpu, models.put(fx, f"{SUBDIR}/{fx.path.name}"), measure, "subdirectory")


@pytest.mark.requires_sd
def test_model_with_long_file_name_loads(device, kpu, models, measure) -> None:
    path = models.put(models.smallest_good(), f"{SD_DIR}/{LONG_NAME}")
    assert LONG_NAME in device.listdir(SD_DIR), f"{LONG_NAME} not listed in {SD_DIR}"
    _load_timed(device, kpu, path, measure, "long_name")
