"""Switching models: load A, deinit, load B, deinit, many times, and what happens without deinit.

Models A and B are v3 kmodels of about 60 % (A) and 58 % (B) of the free system heap, written on
the board by the on-board writer (/sd/hil/switch_a.kmodel, switch_b.kmodel): each fits alone,
the two never fit together.

- ``test_switching_returns_memory``: N switches (``--switch-cycles N``, else $HIL_SWITCH_CYCLES,
  else 20), each "load A, deinit, load B, deinit", i.e. 2N load/deinit cycles. After each deinit
  the free system heap must be back at its baseline within the profile's ``leak_tolerance`` per
  load/deinit cycle so far. Records ``leak_per_cycle_bytes`` (the average loss per load/deinit
  cycle, limit ``leak_tolerance``), ``sys_heap_free_baseline_bytes`` and
  ``sys_heap_free_after_switching_bytes``. A leak fails saying how much, e.g. "kpu.deinit leaks
  8192 bytes per load/deinit cycle (327680 bytes over 40 load/deinit cycles in 20 switches ...)".
- ``test_second_large_load_without_deinit_fails``: as the field notes say, switching without
  ``kpu.deinit`` keeps the first model's buffer, so loading B while A is loaded fails with the
  profile's exact memory error (and takes nothing); after ``kpu.deinit(A)`` B loads.
- ``test_deinit_twice_and_use_after_deinit``: a second ``kpu.deinit`` of the same task is a
  no-op (no exception, the same return value as the first, no second free: the free heap does not
  move), and using a freed task in ``kpu.forward`` raises an exception instead of running or
  crashing the board; the board then still loads a model. A known mismatch (kpu_support): in
  MaixPy v0.6.2's source forward reads the freed slot through NULL, a CPU fault.
"""
from __future__ import annotations

import weakref

import pytest

import kpu_support as ks
from hil.errors import KpuLoadError, MemoryOverflow, ReplError
from hil.kmodel.build import DEFAULT_MAIN_MEM, build_v3

A_SHARE, B_SHARE = 0.60, 0.58
PATH_A, PATH_B = ks.SD_DIR + "/switch_a.kmodel", ks.SD_DIR + "/switch_b.kmodel"
TASK = "hil_switch_task"

_sizes: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@pytest.fixture
def cycles(request) -> int:
    return ks.switch_cycles(request.config)


@pytest.fixture
def big_pair(device) -> tuple[tuple[str, int], tuple[str, int]]:
    """(path, size) of A and B on the board, sized from the free system heap now."""
    free = device.memory().sys_heap_free
    sizes = _sizes.get(device)
    if sizes is None or not (sizes[1] + sizes[0] > free > sizes[0] + DEFAULT_MAIN_MEM):
        sizes = (ks.align_down(int(free * A_SHARE)), ks.align_down(int(free * B_SHARE)))
        _sizes[device] = sizes
    out = []
    for path, size, seed in ((PATH_A, sizes[0], 1), (PATH_B, sizes[1], 2)):
        sha = ks.sha256(build_v3(size, DEFAULT_MAIN_MEM, seed))
        ks.ensure_file(device, path, None, sha, v3_recipe=(size, DEFAULT_MAIN_MEM, seed, 3))
        out.append((path, size))
    return out[0], out[1]


def _leak_message(losses: list[int], base: int, now: int, switches: int, tolerance: int) -> str:
    total = base - now
    per = total / len(losses)
    return (f"kpu.deinit leaks {per:.0f} bytes per load/deinit cycle ({total} bytes over {len(losses)} "
            f"load/deinit cycles in {switches} switches A->B; worst cycle {max(losses)} bytes; "
            f"free system heap {base} -> {now} bytes; tolerance {tolerance} bytes per cycle)")


@pytest.mark.requires_sd
def test_switching_returns_memory(device, firmware, measure, big_pair, cycles) -> None:
    (path_a, size_a), (path_b, size_b) = big_pair
    tolerance = firmware.memory.leak_tolerance
    base = device.memory().sys_heap_free
    measure("sys_heap_free_baseline_bytes", base, "bytes")
    frees: list[int] = []
    losses: list[int] = []
    stopped = ""
    for switch in range(1, cycles + 1):
        for label, path, size in (("A", path_a, size_a), ("B", path_b, size_b)):
            try:
                handle = device.kpu_load(path)
            except MemoryOverflow:
                stopped = f"; in switch {switch} model {label} ({size} bytes) no longer loads"
                break
            device.kpu_deinit(handle)
            now = device.memory().sys_heap_free
            losses.append((frees[-1] if frees else base) - now)
            frees.append(now)
        if stopped:
            break
    if not frees:
        pytest.fail(f"model A ({size_a} bytes, {A_SHARE:.0%} of {base} bytes free) did not load at all")
    switches = max(1, len(frees) // 2)
    measure("sys_heap_free_after_switching_bytes", frees[-1], "bytes")
    try:
        measure("leak_per_cycle_bytes", (base - frees[-1]) / len(frees), "bytes", high=tolerance)
        leaked = False
    except pytest.fail.Exception:
        leaked = True                     # re-failed below with the words a person needs
    if leaked or stopped:
        pytest.fail(_leak_message(losses, base, frees[-1], switches, tolerance) + stopped, pytrace=False)
    for i, now in enumerate(frees, 1):
        if base - now > tolerance * i:
            pytest.fail(f"free system heap not back at its baseline after load/deinit cycle {i}: "
                        f"{base} -> {now} bytes, {base - now} bytes short (tolerance {tolerance} bytes "
                        f"per cycle)", pytrace=False)


@pytest.mark.requires_sd
@pytest.mark.power_cycle
def test_second_large_load_without_deinit_fails(device, firmware, big_pair) -> None:
    (path_a, size_a), (path_b, size_b) = big_pair
    handle_a = device.kpu_load(path_a)
    try:
        with_a = device.memory().sys_heap_free
        what = (f"loading B ({size_b} bytes) while A ({size_a} bytes) is still loaded, without kpu.deinit "
                f"({with_a} bytes free)")
        ks.expect_load_error(device, path_b, firmware, "no_mem", what)
        ks.check_no_residue(device, firmware, with_a, f"the refused load of {what}")
    finally:
        device.kpu_deinit(handle_a)
    try:
        handle_b = device.kpu_load(path_b)
    except KpuLoadError as exc:
        pytest.fail(f"after kpu.deinit(A) model B ({size_b} bytes) still does not load: {exc.exc_type}: {exc.text}",
                    pytrace=False)
    device.kpu_deinit(handle_b)


def test_deinit_twice_and_use_after_deinit(request, device, firmware) -> None:
    ks.known_mismatch(request, firmware, "use_after_deinit")
    good = ks.good_model_path(device, firmware, ks.store_for(device))
    tolerance = firmware.memory.leak_tolerance
    device.exec(f"import KPU as kpu\n{TASK} = kpu.load({good!r})\n")
    try:
        first = device.exec(f"print(repr(kpu.deinit({TASK})))\n").strip()
        freed = device.memory().sys_heap_free
        try:
            second = device.exec(f"print(repr(kpu.deinit({TASK})))\n").strip()
        except ReplError as exc:
            pytest.fail(f"a second kpu.deinit of the same task raised {exc}; the firmware treats it as a no-op",
                        pytrace=False)
        assert second == first, (f"a second kpu.deinit of the same task returned {second!r}, "
                                 f"the first returned {first!r}")
        again = device.memory().sys_heap_free
        assert abs(again - freed) <= tolerance, (
            f"a second kpu.deinit of the same task moved the free system heap {freed} -> {again} bytes "
            f"(a double free?)")
        try:
            out = device.exec(f"print(kpu.forward({TASK}, [0.0]))\n")
        except ReplError as exc:
            device.board.note(f"kpu.forward on a freed task raised {exc.exc_type}: {exc.message}")
            assert (exc.exc_type, exc.message) == ("OSError", firmware.errors.param), (
                f"kpu.forward on a freed task raised {exc.exc_type}: {exc.message!r}, "
                f"expected OSError: {firmware.errors.param!r}")
        else:
            pytest.fail(f"kpu.forward on a freed task ran and printed {out[:80]!r} instead of raising",
                        pytrace=False)
        after = device.memory().sys_heap_free
        assert abs(after - freed) <= tolerance, (
            f"kpu.forward on a freed task moved the free system heap {freed} -> {after} bytes")
    finally:
        device.exec(f"try:\n    del {TASK}\nexcept NameError:\n    pass\n")
    ks.check_still_loads(device, good, "a second kpu.deinit and a kpu.forward on a freed task")
