"""The benchmarks never rot: ``python -m bench --smoke`` in a subprocess writes a JSON with every
metric and a value for each. Timing numbers and targets are never asserted here (they are the
bench's output, not a test's pass/fail); only that every figure was measured.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")


def expected_metrics() -> set[str]:
    """Metric names a smoke run must produce, from the benchmarks' own smoke settings."""
    from bench import bench_isp, bench_upload
    from bench.__main__ import ISP_SMOKE_RUNS
    from bench.common import size_label

    up = bench_upload.SMOKE
    names = {"upload.connect_overhead", "threshold.probes_to_4K", "threshold.wall_time_to_4K",
             "suite.one_rig.wall", "overhead.kept_up.test_start_to_ready",
             "overhead.power_cycle.test_start_to_ready"}
    for size in up.sizes:
        label = size_label(size)
        names |= {f"upload.{up.baud}.{label}.line_fraction", f"upload.{up.baud}.{label}.vs_mpremote",
                  f"upload.fast{up.fast_baud}.{label}.line_fraction", f"upload.fast{up.fast_baud}.{label}.vs_mpremote"}
    for baud, size in bench_isp.parse_runs(ISP_SMOKE_RUNS):
        key = f"isp.{baud}.{size_label(size)}"
        names |= {f"{key}.line_fraction", f"{key}.vs_kflash", f"{key}.session_vs_kflash"}
    return names


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@pytest.mark.slow
def test_smoke_run_writes_every_metric(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert (out / "bench.json").is_file(), f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    doc = json.loads((out / "bench.json").read_text())
    rows = {r["metric"]: r for r in doc["rows"]}

    errors = {m: r["note"] for m, r in rows.items() if r["verdict"] == "error"}
    assert not errors, f"benchmarks that could not measure: {errors}"
    missing = expected_metrics() - rows.keys()
    assert not missing, f"metrics missing from the smoke run: {sorted(missing)}"
    assert any(r["group"] == "farm" for r in rows.values()), "no farm row (measured or 'not available yet')"

    for metric, r in rows.items():
        if r["verdict"] == "n/a":          # e.g. the farm benchmark before it exists: says why
            assert r["note"], f"{metric}: not measured and no note saying why"
            continue
        assert _number(r["ours"]), f"{metric}: no value ({r})"
        if r["target"] and r["target"].startswith("ratio"):
            assert _number(r["ratio"]) and _number(r["reference"]), f"{metric}: no reference or ratio ({r})"
        assert r["verdict"] in ("met", "SHORT", "info"), f"{metric}: verdict {r['verdict']!r}"
    assert proc.returncode == 0, proc.stderr[-2000:]

    md = (out / "bench.md").read_text()
    assert "| metric | ours | reference | ratio | target | verdict | note |" in md
    assert all(f"| {m} |" in md for m in rows)
    assert doc["meta"]["mode"] == "smoke"


# -- the bench's own arithmetic (no boards, milliseconds) -------------------------------------------
def test_verdicts_and_targets() -> None:
    from bench.common import Row, Target, at_least, missing_row

    assert Row("g", "m", 0.95, ratio=0.95, target=at_least(0.9)).verdict == "met"
    assert Row("g", "m", 0.85, ratio=0.85, target=at_least(0.9)).verdict == "SHORT"
    assert Row("g", "m", 11, target=Target("ours", "<=", 13)).verdict == "met"
    assert Row("g", "m", 1.0).verdict == "info"
    assert missing_row("farm", "m", "s", "not available yet").verdict == "n/a"
    assert str(at_least(3)) == "ratio >= 3x" and str(Target("ours", "<", 60)) == "ours < 60"


def test_scaling_per_doubling_and_fit() -> None:
    from bench.common import Scaling

    s = Scaling("linear plus fixed", ((1000, 1.5), (2000, 2.5), (8000, 8.5)))
    fixed, rate = s.fit()
    assert fixed == pytest.approx(0.5) and rate == pytest.approx(1000)
    (a, b, f1), (c, d, f2) = s.per_doubling()
    assert (a, b, c, d) == (1000, 2000, 2000, 8000)
    assert f1 == pytest.approx(2.5 / 1.5) and f2 == pytest.approx((8.5 / 2.5) ** 0.5)


def test_sizes_and_pytest_summary() -> None:
    from bench.bench_suite import parse_counts
    from bench.common import parse_size, size_label

    assert parse_size("64K") == 65536 and parse_size("2M") == 2 * 1024 * 1024 and parse_size("512KiB") == 524288
    assert size_label(524288) == "512K" and size_label(2 * 1024 * 1024) == "2M"
    with pytest.raises(ValueError, match="'lots'"):
        parse_size("lots")
    assert parse_counts("x\n49 passed, 9 skipped in 38.09s\n") == {"passed": 49, "skipped": 9}
    assert parse_counts("1 failed, 2 passed, 1 error in 3.0s") == {"failed": 1, "passed": 2, "errors": 1}
