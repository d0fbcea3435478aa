"""End to end: the real suites on the healthy and the regressed simulated rig, then
`hil report compare` must name the regressions the regressed build carries (its kpu.deinit leaks
8 KiB per model, its image grew 256 KiB so less model fits) and nothing it does not carry.

The two runs are on different rigs of one board and firmware family: by default they are
compared test by test (and with --match-by test, any rig against any other).
Skips until the suites and the regressed rig exist.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hil.cli import main as hil_main
from hil.commands.nightly import locate_run_dir

ROOT = Path(__file__).resolve().parents[1]
NEEDED = [ROOT / "suites" / "test_switching.py", ROOT / "suites" / "test_memory_threshold.py",
          ROOT / "rigs" / "sim-regressed.toml", ROOT / "rigs" / "sim.toml"]
MISSING = [str(p.relative_to(ROOT)) for p in NEEDED if not p.exists()]
SUITES = ["suites/test_switching.py", "suites/test_memory_threshold.py"]
RUN_TIMEOUT_S = 1800

# Measurement changes the regressed build explains, by name: the threshold (and any other
# "largest model that fits" reading) falls, the leak per cycle rises, and free memory after boot
# falls by the image growth. Anything else past tolerance is unexpected.
EXPECTED_CHANGES = {
    "threshold": (re.compile(r"threshold"), "fell"),
    "leak": (re.compile(r"leak"), "rose"),
}
EXPLAINED_TOO = re.compile(r"free|heap|largest|fits")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"end-to-end report test needs {', '.join(MISSING)} "
                                              f"(written by the suites/simulator helpers)"),
]


def _run_suites(rig: str, results: Path) -> Path:
    argv = [sys.executable, "-m", "pytest", *SUITES, "--rig", rig, "--hil-results", str(results),
            "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode in (0, 1), (
        f"pytest --rig {rig} exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    where = locate_run_dir(results)
    assert where is not None, f"pytest --rig {rig} wrote no run record under {results}"
    return where


def test_compare_names_exactly_the_regressions_of_the_regressed_build(tmp_path, capsys):
    healthy = _run_suites("sim", tmp_path / "healthy")
    regressed = _run_suites("sim-regressed", tmp_path / "regressed")

    code = hil_main(["report", "compare", "--match-by", "test", "--json",
                     str(healthy), str(regressed)])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["exit_code"] == 1

    counts = data["counts"]
    # nothing broken on a simulator, nothing added or gone between two runs of the same suites
    for kind in ("broken", "added", "added_failing", "gone", "not_reached", "fixed"):
        assert counts[kind] == 0, (kind, data)
    tests = [t for g in data["groups"] for t in g["tests"]]
    failing_files = {t["nodeid"].split("::")[0] for t in tests if t["kind"] == "new_failure"}
    assert failing_files <= set(SUITES), failing_files

    changes = [m for g in data["groups"] for m in g["measurements"]]
    found = {key: [m for m in changes if rx.search(m["name"])]
             for key, (rx, _) in EXPECTED_CHANGES.items()}
    for key, (_, verb) in EXPECTED_CHANGES.items():
        assert found[key], f"no {key} change reported: {[m['phrase'] for m in changes]}"
        for m in found[key]:
            assert m["regression"] and f" {verb} " in m["phrase"], m["phrase"]
    # the threshold falls by about the image growth (256 KiB), to 4 KiB resolution
    drop = -min(m["delta"] for m in found["threshold"])
    assert 200 * 1024 <= drop <= 320 * 1024, drop
    rise = max(m["delta"] for m in found["leak"])
    assert rise >= 4096, rise
    unexpected = [m["phrase"] for m in changes
                  if not any(rx.search(m["name"]) for rx, _ in EXPECTED_CHANGES.values())
                  and not EXPLAINED_TOO.search(m["name"])]
    assert not unexpected, unexpected

    # and the Markdown a human reads tells it in order, matching the two rigs (one board, one
    # firmware family) test by test without being asked: failures with reasons first, each
    # with the band violation that explains it, then the firmware, then the measurements
    assert hil_main(["report", "compare", str(healthy), str(regressed)]) == 1
    md = capsys.readouterr().out
    lines = md.splitlines()
    assert lines[4] == f"**New failures ({counts['new_failure']})**", md
    failures = [line for line in lines[5:] if line.startswith("- `")][:counts["new_failure"]]
    assert all(re.fullmatch(r"- `suites/\S+`: \S.{10,}", line) for line in failures), failures
    assert re.search(r"  - band: threshold\w* \d+ -> \d+ bytes: \d+ KiB below its band", md), md
    # the healthy build's figure may be negative or fractional: newlib can trim a page more than
    # boot left, so heap_free after the switches can end a little above its baseline
    assert re.search(r"  - band: leak\w* -?[\d.]+ -> \d+ bytes: .* above its ceiling", md), md
    assert md.index("**Firmware changed**: ") < md.index("**Measurements worse past tolerance")
    assert re.search(r"\d+ sys_heap_free_\* readings in \d+ tests fell", md), md
    assert "same board and firmware family, test by test" in md
