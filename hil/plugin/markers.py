"""Markers the suites use (requires_sd, firmware(...), power_cycle) and whether a rig can run a
test marked so; and the warning filter for pyserial's noise."""
from __future__ import annotations

import contextlib
import fnmatch
import warnings
from typing import Any

import pytest

FIRMWARE_CAPS = ("accepts", "rejects", "family", "gc_heap_configurable", "v5_loader")
# pyserial 3.5's RFC 2217 client calls Thread.setDaemon/setName (deprecated since Python 3.10)
PYSERIAL_NOISE = r"ignore:set(Daemon|Name)\(\) is deprecated:DeprecationWarning:serial\.rfc2217"


def add_markers(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires_sd: the test needs an SD card on the rig (skipped without one)")
    config.addinivalue_line("markers", "firmware(*names, accepts=, rejects=, family=, gc_heap_configurable=, "
                                       "v5_loader=): run only on matching firmware profiles (name globs and/or "
                                       "capabilities, e.g. firmware(accepts=4))")
    config.addinivalue_line("markers", "power_cycle: power-cycle the board (fresh boot) before the test")


@contextlib.contextmanager
def quiet_pyserial():
    """Outside tests pytest shows warnings as they come: keep pyserial's noise off a one-line error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"set(Daemon|Name)\(\) is deprecated", DeprecationWarning,
                                r"serial\.rfc2217")
        yield


def firmware_mismatch(profile: Any, names: tuple, caps: dict, nodeid: str = "") -> str:
    """Why a firmware(...) marker excludes this profile ("" when it matches)."""
    if names and not any(fnmatch.fnmatchcase(profile.name, str(n)) for n in names):
        return f"test needs firmware {' or '.join(map(str, names))}"
    for key, want in caps.items():
        if key in ("accepts", "rejects"):
            versions = list(want) if isinstance(want, (list, tuple, set)) else [want]
            bad = [v for v in versions if profile.accepts(v) != (key == "accepts")]
            if bad:
                verb = "loads" if key == "accepts" else "rejects"
                return (f"test needs a build that {verb} kmodel v{', v'.join(map(str, bad))} "
                        f"(profile loads v{', v'.join(map(str, profile.kpu.load_versions))})")
        elif key == "family":
            if profile.family != want:
                return f"test needs the {want} family"
        elif key == "gc_heap_configurable":
            if profile.memory.gc_heap_configurable != bool(want):
                return f"test needs gc_heap_configurable = {bool(want)}"
        elif key == "v5_loader":
            if bool(profile.kpu.v5_loader) != bool(want):
                return "test needs a kmodel v5 loader" if want else "test needs a build without a v5 loader"
        else:
            raise pytest.UsageError(f"{nodeid}: firmware marker: unknown capability {key!r} "
                                    f"(known: {', '.join(FIRMWARE_CAPS)})")
    return ""
