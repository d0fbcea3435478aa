"""Regenerate this corpus of malformed firmware profiles from rigs/firmware/maixpy-v0.6.2-full.toml.

    python tests/data/profiles_bad/make_profiles.py

Each file is the shipped profile with one defect (its ``name`` follows the file name, so that is
never the error unless it is the point). EXPECTED.json maps each file to a substring its one-line
FirmwareProfileError must contain. Run by tests/test_corpus_inputs.py.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent.parent / "rigs" / "firmware" / "maixpy-v0.6.2-full.toml"

CASES: dict[str, tuple[object, str]] = {
    # name: (edit, expected substring)
    "empty": (lambda t: "", "[profile] missing"),
    "not_toml": (lambda t: "[profile\nname = 1\n", "invalid TOML"),
    "not_utf8": (lambda t: b"\xff\xfe[profile]\n", "UTF-8"),
    "name_mismatch": (lambda t: t.replace('name = "not_matching"', 'name = "other-name"'),
                      "profile.name: 'other-name' must match the file name 'name_mismatch'"),
    "family_unknown": (lambda t: t.replace('family = "maixpy"', 'family = "openmv"'), "profile.family"),
    "version_not_string": (lambda t: t.replace('version = "v0.6.2-75-g973361c0d"', "version = 62"),
                           "profile.version"),
    "no_errors_table": (lambda t: re.sub(r"\[errors\].*?(?=\n\[memory\])", "", t, flags=re.S), "[errors] missing"),
    "errors_missing_no_mem": (lambda t: re.sub(r"\nno_mem = .*", "", t), "errors.no_mem"),
    "errors_not_string": (lambda t: re.sub(r"\nno_mem = .*", "\nno_mem = 2006", t), "errors.no_mem"),
    "load_versions_string": (lambda t: t.replace("load_versions = [3, 4]", 'load_versions = "3,4"'),
                             "kpu.load_versions"),
    "load_versions_unknown": (lambda t: t.replace("load_versions = [3, 4]", "load_versions = [2, 3]"),
                              "kpu.load_versions: kmodel version 2 unknown (known: 3, 4, 5)"),
    "band_reversed": (lambda t: t.replace("threshold_band = [2_150_000, 2_300_000]",
                                          "threshold_band = [2_300_000, 2_150_000]"),
                      "memory.threshold_band: must be [low, high] bytes with 0 < low <= high"),
    "band_three": (lambda t: t.replace("threshold_band = [2_150_000, 2_300_000]", "threshold_band = [1, 2, 3]"),
                   "memory.threshold_band"),
    "gc_heap_string": (lambda t: t.replace("gc_heap_default = 524288", 'gc_heap_default = "512K"'),
                       "memory.gc_heap_default"),
    "unknown_table": (lambda t: t + "\n[extra]\nx = 1\n", "extra"),
    "unknown_key_kpu": (lambda t: t.replace("max_models = 5", "max_models = 5\nspeed = 1"), "kpu.speed"),
    # profiles say what a build is expected to do; how the simulator behaves is not theirs to say
    "sim_table": (lambda t: t + "\n[sim]\nimage_size = 1_867_776\n", "sim: unknown key"),
}


def main() -> None:
    text = SOURCE.read_text().replace('name = "maixpy-v0.6.2-full"', 'name = "not_matching"', 1)
    expected = {}
    for name, (edit, want) in CASES.items():
        base = text.replace('name = "not_matching"', f'name = "{name}"', 1)
        if name == "name_mismatch":
            base = text
        out = edit(base)
        path = HERE / f"{name}.toml"
        if isinstance(out, bytes):
            path.write_bytes(out)
        else:
            path.write_text(out)
        expected[path.name] = want
    (HERE / "EXPECTED.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
