"""Firmware profiles: what a firmware build is expected to do, as data (rigs/firmware/NAME.toml).

A profile is read by the suites (what to expect: accepted kmodel versions, exact error texts,
the band the memory threshold must land in). The simulated board never reads it: how a
simulated build behaves is the simulator's own knowledge, from the firmware source (package
k210sim), so a green run on the simulator compares two independent truths.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.cases import CALL_CASES, Case, default_case, parse_cases
from hil.errors import FirmwareProfileError
from hil.rigdirs import RigSearch
from hil.tomlcheck import Table, named_table

FAMILIES = ("maixpy", "csdk")      # csdk: standalone-SDK firmware with the k210-hil agent (agent/)


@dataclass(frozen=True)
class KpuSpec:
    load_versions: tuple[int, ...]        # kmodel versions kpu.load(path|offset) accepts
    v5_loader: str = ""                   # name of a v5 loader call the build has; "" = none
    v4_needs_set_outputs: bool = True     # v4 models need kpu.set_outputs() before forward
    max_models: int = 5                   # models loaded at once before ERR_MODELS_FULL


@dataclass(frozen=True)
class ErrorTexts:
    """Exception texts exactly as the firmware prints them after the exception class name."""
    model_addr: str       # kpu.load(offset) with offset <= 0
    path_format: str      # path not ending .kmodel/.smodel/.emodel
    version: str          # ERR_KMODEL_VERSION (also garbage at a flash offset)
    body_size: str        # ERR_KMODEL_FORMAT
    no_mem: str           # ERR_NO_MEM
    first_layer: str      # v3 whose first layer is not a K210 conv
    models_full: str      # too many models at once
    missing_file: str     # OSError text for a missing file / absent SD card
    set_outputs: str      # forward on a v4 model without set_outputs
    read_file: str        # model shorter than its header says (truncated): code 2005, text UNCONFIRMED
    param: str = "ERR_PARAM: please check param, load address or kmodel file name"
                          # OSError from kpu.forward on a task already freed by kpu.deinit

    def code_of(self, text: str) -> int | None:
        """The numeric load-error code inside a text such as 'load error:2006, ...' (MaixPy) or
        'ERR 2006 NO_MEM: ...' (the C-SDK agent), if any."""
        if text.startswith("ERR "):
            digits = text[4:].split(" ", 1)[0]
            return int(digits) if digits.isdigit() else None
        marker = "load error:"
        i = text.find(marker)
        if i < 0:
            marker = "load_flash error:"
            i = text.find(marker)
        if i < 0:
            return None
        digits = ""
        for ch in text[i + len(marker):]:
            if not ch.isdigit():
                break
            digits += ch
        return int(digits) if digits else None


@dataclass(frozen=True)
class MemorySpec:
    gc_heap_default: int | None            # bytes; Maix.utils.gc_heap_size() at first boot (None: no GC heap, C SDK)
    gc_heap_configurable: bool             # utils.gc_heap_size(n) exists and takes effect on reboot
    threshold_band: tuple[int, int]        # expected largest loadable v3 file, bytes (lo, hi)
    leak_tolerance: int = 1024             # bytes per load/deinit cycle still counted as no leak


@dataclass(frozen=True)
class FirmwareProfile:
    name: str
    family: str
    version: str             # as the banner prints it: "v0.6.2-75-g973361c0d"
    build_date: str          # banner date: "2022-04-16"
    release_file: str        # the released .bin name this profile describes
    description: str
    kpu: KpuSpec
    errors: ErrorTexts
    memory: MemorySpec
    path: Path | None = field(default=None, compare=False)
    cases: dict[str, Case] = field(default_factory=dict, compare=False)   # [cases]: hil/cases.py

    def accepts(self, version: int) -> bool:
        return version in self.kpu.load_versions

    def case(self, name: str, default_key: str | None) -> Case:
        """What this build does with case ``name``: the [cases] entry, else ``default_key``'s
        error (None: it loads)."""
        return self.cases.get(name) or default_case(name, default_key, self.errors)

    def fixture_case(self, fixture: Any) -> Case:
        """What this build does with a manifest fixture (hil.kmodel.fixtures.Fixture)."""
        return self.case(fixture.name, fixture.expected_error(self.kpu.load_versions))

    def call_case(self, name: str, default_key: str | None = None) -> Case:
        """What this build does with a call the suites make (hil.cases.CALL_CASES); calls whose
        error the bytes decide give ``default_key``."""
        if name not in CALL_CASES:
            raise KeyError(f"{name!r} is not a call case (known: {', '.join(CALL_CASES)})")
        return self.case(name, CALL_CASES[name][1] or default_key)

    @property
    def banner(self) -> str:
        """The MicroPython version line of the boot banner."""
        return (f"MicroPython {self.version} on {self.build_date}; "
                f"Sipeed_M1 with kendryte-k210")


def _err(msg: str) -> FirmwareProfileError:
    return FirmwareProfileError(msg)


def parse_profile(path: Path) -> FirmwareProfile:
    top, p, name = named_table(path, "profile", _err)
    family = p.take_choice("family", FAMILIES)
    version = p.take("version", str)
    build_date = p.take("build_date", str)
    release_file = p.take("release_file", str)
    description = p.take("description", str, "")
    p.done()

    k = top.sub("kpu")
    versions = k.take_int_list("load_versions")
    bad = [v for v in versions if v not in (3, 4, 5)]
    if bad:
        raise k.fail("load_versions", f"kmodel version {bad[0]} unknown (known: 3, 4, 5)")
    kpu = KpuSpec(load_versions=versions,
                  v5_loader=k.take("v5_loader", str, ""),
                  v4_needs_set_outputs=k.take("v4_needs_set_outputs", bool, True),
                  max_models=k.take("max_models", int, 5))
    k.done()

    e = top.sub("errors")
    errors = ErrorTexts(**{f: e.take(f, str) for f in ErrorTexts.__dataclass_fields__})
    e.done()

    m = top.sub("memory")
    band = m.take_int_list("threshold_band")
    if len(band) != 2 or not 0 < band[0] <= band[1]:
        raise m.fail("threshold_band", f"must be [low, high] bytes with 0 < low <= high, got {list(band)}")
    memory = MemorySpec(gc_heap_default=m.take("gc_heap_default", int, None),
                        gc_heap_configurable=m.take("gc_heap_configurable", bool),
                        threshold_band=(band[0], band[1]),
                        leak_tolerance=m.take("leak_tolerance", int, 1024))
    m.done()
    if memory.gc_heap_default is None and family == "maixpy":
        raise m.fail("gc_heap_default", "missing (required for a MaixPy build)")
    if memory.gc_heap_default is not None and memory.gc_heap_default <= 0:
        raise m.fail("gc_heap_default", f"{memory.gc_heap_default} bytes: must be > 0")

    cases = parse_cases(top.sub("cases", required=False), errors, _case_names)
    _check_defaults(e, errors, kpu, cases)
    top.done()
    return FirmwareProfile(name=name, family=family, version=version, build_date=build_date,
                           release_file=release_file, description=description, kpu=kpu,
                           errors=errors, memory=memory, path=path, cases=cases)


def _case_names() -> dict[str, str]:
    """Every name [cases] may use: the manifest's fixtures and the suites' call cases."""
    from hil.kmodel.fixtures import manifest   # lazy: only profiles read the model manifest
    names = {fx.name: f"fixture ({fx.origin})" for fx in manifest()}
    names.update({name: what for name, (what, _) in CALL_CASES.items()})
    return names


def _check_defaults(table: Table, errors: ErrorTexts, kpu: KpuSpec, cases: dict[str, Case]) -> None:
    """An [errors] text left empty ("this build has no such error") must not be what a case
    without a [cases] entry expects."""
    from hil.kmodel.fixtures import manifest
    wanted = [(fx.name, fx.expected_error(kpu.load_versions)) for fx in manifest()]
    wanted += [(name, key) for name, (_, key) in CALL_CASES.items() if key]
    for name, key in wanted:
        if key and not getattr(errors, key) and name not in cases:
            raise table.fail(key, f"empty, but {name} expects this error by default: give the text, or "
                                  f"say what the build does in [cases] {name} = {{ outcome = ... }}")


def profile_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Where profiles are looked up, first match wins: ``extra`` (the ``firmware/`` beside a rig
    file), then ``firmware/`` in each directory of the rig lookup order (hil.rigdirs)."""
    dirs = list(extra or []) + [d.path / "firmware" for d in RigSearch.default().dirs]
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def available_profiles(extra: list[Path] | None = None) -> list[str]:
    names: set[str] = set()
    for d in profile_dirs(extra):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def load_profile(name_or_path: str | Path, extra: list[Path] | None = None) -> FirmwareProfile:
    """Load a profile by name (searched in profile_dirs) or by path to a .toml file."""
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text:
        return parse_profile(Path(text))
    dirs = profile_dirs(extra)
    for d in dirs:
        candidate = d / f"{text}.toml"
        if candidate.is_file():
            return parse_profile(candidate)
    known = ", ".join(available_profiles(extra)) or "none found"
    raise FirmwareProfileError(f"firmware profile {text!r} not found in {', '.join(map(str, dirs))} "
                               f"(known: {known})")
