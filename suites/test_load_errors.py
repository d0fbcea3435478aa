"""Every input kpu.load must refuse gets the firmware's exact error, and leaves nothing behind.

The expected text of each case is the firmware profile's (``firmware.errors``), and the code is
the one inside that text (``firmware.errors.code_of``); tests assert ``KpuLoadError.text`` and
``.code``, not the exception class (profiles do not list it). Which error a broken fixture gets is
the manifest's ``Fixture.expected_error(profile.kpu.load_versions)`` (hil/kmodel/verdict.py
explains each choice), unless the profile's [cases] table says what this build does instead:
it loads (a known weakness, reported as one: a warning and a ``known_weakness`` property), a
different error, or a fault (the board crashes: the load must end in bounded time, the recovery
ladder must bring the board back, and the test says which rung did).

After each failed load: the free system heap is back where it was before it (within the
profile's leak_tolerance), and the board still loads a good model (the smallest committed fixture
of a version the build loads).

Models live in /sd/hil/ when the board has a card, else in /flash (name prefix hil_), so the suite
also runs on a rig without an SD card. The SD-card-absent case runs only there: on a rig with a
card it is skipped with the reason (the suites never pull the card; a rig file with
``storage.sd = false`` describes a rig without one).

kmodel v4 on a build whose profile does not load v4: the exact V3-only version error is asserted
first, then the test is reported xfailed ("known: this build has no kmodel v4 loader (field notes:
the v4 load bug)"). A different error, or a v4 model that loads, fails.
"""
from __future__ import annotations

import pytest

from hil.device.models import FLASH_PREFIX, SD_DIR
from hil.kmodel.fixtures import broken_models, committed_loadable, smallest_per_version, well_formed

from . import kpu_support as ks


@pytest.fixture
def rejected(checks, firmware):
    """rejected(source, call case, what): what the profile says this build does with the call
    (by default the case's error), no heap left behind, a good model still loads."""
    def check(source, case: str, what: str) -> None:
        ks.check_case(checks, firmware.call_case(case), source, what)
    return check


@pytest.mark.parametrize("fx", broken_models(), ids=lambda f: f.name)
def test_broken_model_rejected(request, models, firmware, checks, fx) -> None:
    ks.known_mismatch(request, firmware, fx.name)
    path = models.put(fx)
    assert fx.expected_error(firmware.kpu.load_versions) is not None, \
        f"manifest says {fx.name} loads; it is not a broken fixture"
    ks.check_case(checks, firmware.fixture_case(fx), path, f"{fx.name} ({fx.origin})")


@pytest.mark.parametrize("fx", smallest_per_version(), ids=lambda f: f.name)
def test_unsupported_version_rejected(request, models, firmware, checks, fx) -> None:
    if firmware.accepts(fx.version):
        pytest.skip(f"{firmware.name} loads kmodel v{fx.version}: test_load_sd.py loads it")
    if fx.version == 4:
        pytest.skip("v4 on a build without the v4 loader is test_v4_on_build_without_v4_loader "
                    "(the known v4 load bug)")
    ks.known_mismatch(request, firmware, fx.name)
    ks.check_case(checks, firmware.fixture_case(fx), models.put(fx), f"{fx.name} (kmodel v{fx.version})")


@pytest.mark.firmware(rejects=4)
def test_v4_on_build_without_v4_loader(models, firmware, checks) -> None:
    """The field notes' v4 load bug: the V3-only error, reported as the known xfail."""
    fx = min((f for f in well_formed() if f.version == 4 and f.committed), key=lambda f: f.size)
    ks.check_case(checks, firmware.fixture_case(fx), models.put(fx), f"{fx.name} (kmodel v4)")
    pytest.xfail(ks.KNOWN_V4_BUG)


def test_non_kmodel_path_rejected(models, firmware, rejected) -> None:
    path = models.put(committed_loadable(firmware.kpu.load_versions)[0], models.path("model_with_wrong_extension.bin"))
    rejected(path, "non_kmodel_path", f"a good model named {path}")


@pytest.mark.parametrize("where", ["store", "flash"])
def test_missing_file_rejected(request, device, files, models, firmware, rejected, where) -> None:
    if where == "flash":
        ks.require(device, "flash_files")
    ks.known_mismatch(request, firmware, "missing_file")
    path = models.path("no_such_model.kmodel") if where == "store" else FLASH_PREFIX + "no_such_model.kmodel"
    device.remove(path, missing_ok=True)
    files.forget(path)
    rejected(path, "missing_file" if where == "store" else "missing_file_flash", f"missing file {path}")


def test_sd_card_absent(request, device, firmware, rejected) -> None:
    if device.sd_present():
        pytest.skip("this rig has an SD card mounted at /sd: the card-absent case runs on a rig without one "
                    "(storage.sd = false); the suites never pull the card")
    ks.known_mismatch(request, firmware, "missing_file")
    path = SD_DIR + "/model.kmodel"
    rejected(path, "sd_card_absent", f"{path} with no SD card")


def test_too_many_models_at_once(device, kpu, firmware, good) -> None:
    """profile.kpu.max_models loaded at once: one more gets the models_full error and takes nothing."""
    limit = firmware.kpu.max_models
    handles = []
    try:
        for _ in range(limit):
            handles.append(kpu.load(good))
        full = device.memory().sys_heap_free
        what = f"model {limit + 1} while {limit} are loaded"
        ks.expect_load_error(kpu, good, firmware, "models_full", what)
        ks.check_no_residue(device, firmware, full, f"the refused load of {what}")
    finally:
        for h in handles:
            kpu.deinit(h)
    ks.check_still_loads(kpu, good, f"refusing model {limit + 1}")
