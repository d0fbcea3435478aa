"""Switching models (A, B: v3, about 60 % and 58 % of the free system heap: each fits alone, never
both). N switches (``--switch-cycles N``, $HIL_SWITCH_CYCLES, 20) are 2N load/deinit cycles; after
each deinit the free heap is back at its baseline within leak_tolerance per cycle so far. Without
deinit, B fails with the profile's memory error while A is loaded (A, B: models.sized). A second
deinit is a no-op; kpu.forward on a freed task raises ``errors.param`` (skipped where no forward).
"""
from __future__ import annotations

import pytest

from hil.errors import KpuError, KpuLoadError, MemoryOverflow
from hil.kmodel.build import DEFAULT_MAIN_MEM
from hil.kmodel.fixtures import Recipe
from . import kpu_support as ks                 # relative: installed, the suites are hil.suites

SHARES = (0.60, 0.58)


@pytest.fixture
def big_pair(device, models, memory_edges) -> list[tuple[str, int]]:
    """(path, size) of A and B on the board, sized from the free system heap now."""
    sizes = memory_edges.pair(device.memory().sys_heap_free, SHARES)
    return [(models.sized(Recipe("v3", size=size, main_mem=DEFAULT_MAIN_MEM, seed=seed),
                          models.path(f"switch_{label}.kmodel")), size)
            for label, size, seed in (("a", sizes[0], 1), ("b", sizes[1], 2))]


@pytest.mark.requires_sd
def test_switching_returns_memory(device, kpu, firmware, measure, big_pair, request) -> None:
    tolerance = firmware.memory.leak_tolerance
    base = measure("sys_heap_free_baseline_bytes", device.memory().sys_heap_free, "bytes")
    frees: list[int] = []
    stopped = ""
    for switch in range(1, ks.switch_cycles(request.config) + 1):
        for label, (path, size) in zip("AB", big_pair):
            try:
                kpu.deinit(kpu.load(path))
            except MemoryOverflow:
                stopped = f"; in switch {switch} model {label} ({size} bytes) no longer loads"
                break
            frees.append(device.memory().sys_heap_free)
        if stopped:
            break
    if not frees:
        ks.fail(f"model A ({big_pair[0][1]} bytes, {SHARES[0]:.0%} of {base} bytes free) did not load at all")
    losses = [before - now for before, now in zip([base] + frees, frees)]
    measure("sys_heap_free_after_switching_bytes", frees[-1], "bytes")
    try:
        measure("leak_per_cycle_bytes", (base - frees[-1]) / len(frees), "bytes", high=tolerance)
    except pytest.fail.Exception:
        stopped = stopped or " "          # re-failed below with the words a person needs
    if stopped:
        ks.fail(f"kpu.deinit leaks {(base - frees[-1]) / len(frees):.0f} bytes per load/deinit cycle "
                f"({base - frees[-1]} bytes over {len(frees)} load/deinit cycles in {max(1, len(frees) // 2)} "
                f"switches A->B; worst cycle {max(losses)} bytes; free system heap {base} -> {frees[-1]} bytes; "
                f"tolerance {tolerance} bytes per cycle)" + stopped.rstrip())
    for i, now in enumerate(frees, 1):
        if base - now > tolerance * i:
            ks.fail(f"free system heap not back at its baseline after load/deinit cycle {i}: {base} -> {now} "
                    f"bytes, {base - now} bytes short (tolerance {tolerance} bytes per cycle)")


@pytest.mark.requires_sd
@pytest.mark.power_cycle
def test_second_large_load_without_deinit_fails(device, kpu, firmware, big_pair) -> None:
    (path_a, size_a), (path_b, size_b) = big_pair
    handle_a = kpu.load(path_a)
    try:
        with_a = device.memory().sys_heap_free
        what = f"loading B ({size_b} bytes) while A ({size_a} bytes) is still loaded, without kpu.deinit " \
               f"({with_a} bytes free)"
        ks.expect_load_error(kpu, path_b, firmware, "no_mem", what)
        ks.check_no_residue(device, firmware, with_a, f"the refused load of {what}")
    finally:
        kpu.deinit(handle_a)
    try:
        kpu.deinit(kpu.load(path_b))
    except KpuLoadError as exc:
        ks.fail(f"after kpu.deinit(A) model B ({size_b} bytes) still does not load: {exc.exc_type}: {exc.text}")


def test_deinit_twice_and_use_after_deinit(request, device, kpu, models, firmware) -> None:
    ks.require(device, "kpu_forward")
    ks.known_mismatch(request, firmware, "use_after_deinit")
    good, tolerance = models.good(), firmware.memory.leak_tolerance
    task = kpu.load(good)
    try:
        first = kpu.deinit(task, keep_task=True)
        freed = device.memory().sys_heap_free
        try:
            second = kpu.deinit(task, keep_task=True)
        except KpuError as exc:
            ks.fail(f"a second kpu.deinit of the same task raised {exc}; the firmware treats it as a no-op")
        assert second == first, f"a second kpu.deinit of the same task returned {second!r}, the first returned {first!r}"
        again = device.memory().sys_heap_free
        assert abs(again - freed) <= tolerance, (f"a second kpu.deinit of the same task moved the free "
                                                 f"system heap {freed} -> {again} bytes (a double free?)")
        try:
            out = kpu.forward(task, [0.0])
        except KpuError as exc:
            assert (exc.exc_type, exc.text) == ("OSError", firmware.errors.param), (
                f"kpu.forward on a freed task raised {exc.exc_type}: {exc.text!r}, expected OSError: "
                f"{firmware.errors.param!r}")
        else:
            ks.fail(f"kpu.forward on a freed task ran and printed {out[:80]!r} instead of raising")
        after = device.memory().sys_heap_free
        assert abs(after - freed) <= tolerance, f"kpu.forward on a freed task moved the free system heap {freed} -> {after} bytes"
    finally:
        kpu.drop(task)
    ks.check_still_loads(kpu, good, "a second kpu.deinit and a kpu.forward on a freed task")
