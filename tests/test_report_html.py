"""The static trend page: self-contained, complete, and (with Chromium) renders to a real picture."""
from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from hil.cli import main as hil_main
from hil.report.html import render_html
from hil.report.runs import find_runs
from hil.report.svg import Point, _nice_ticks, line_chart

DATA = Path(__file__).parent / "data" / "records"
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results directory of seven nights: five history nights, old and new."""
    res = tmp_path / "results"
    for d in (DATA / "history").iterdir():
        shutil.copytree(d, res / d.name)
    shutil.copytree(DATA / "old", res / "2024-05-01T020000")
    shutil.copytree(DATA / "new", res / "2024-05-02T020000")
    shutil.copytree(DATA / "killed", res / "2024-05-03T020000-sim")
    (res / "compare.md").write_text("not a run\n")
    return res


def _page(results: Path, tmp_path: Path) -> tuple[str, Path]:
    out = tmp_path / "report.html"
    assert hil_main(["report", "html", str(results), "-o", str(out)]) == 0
    return out.read_text(), out


def test_page_is_self_contained(results, tmp_path):
    page, _ = _page(results, tmp_path)
    lowered = page.lower()
    for forbidden in ("<script", "<link", "@import", "url(", "src=", "http://", "https://"):
        assert forbidden not in lowered, forbidden
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_page_has_nights_grid_and_plots(results, tmp_path):
    page, _ = _page(results, tmp_path)
    # rig sim ran 8 nights (5 history, old, new, killed); maixbit 2
    sim = page[page.index('id="rig-sim"'):]
    grid = sim[:sim.index("</table>")]
    assert grid.count('class="night') == 8
    assert grid.count('<tr><th class="test"') == 1 + 11    # header row + one per test
    assert "killed" in grid                                 # the killed night is marked
    assert grid.count('class="night fw"') == 2              # firmware changed on 05-02, back 05-03
    assert grid.count("background:#e8a317") == 2            # broken cells, own colour
    for name in ("threshold_sd_bytes", "leak_per_cycle_bytes", "sys_heap_free_bytes",
                 "load_time_sd_v3_s"):
        assert f'aria-label="{name}"' in sim
    assert "fell 180 KiB (2252800 -&gt; 2068480)" not in sim  # latest is the killed night ...
    assert "last line cut short" in page                    # ... and its notes are shown
    assert sim.count('<figure><svg') == 5                    # one plot per measurement
    assert page.count('<figure class="kf">') == 2            # key figures: threshold, leak


def test_latest_summary_names_the_regressions(tmp_path):
    runs, _ = find_runs(DATA / "history")
    from hil.report.runs import load_run
    page = render_html(runs + [load_run(DATA / "old"), load_run(DATA / "new")])
    assert "threshold_sd_bytes fell 180 KiB (2252800 -&gt; 2068480)" in page
    assert ('<code>test_load_sd.py::test_load_v4</code> <span class="reason">kpu.load raised '
            'ValueError</span>') in page
    # worst rig first: sim regressed, maixbit only had a broken test
    table = page[page.index('<table class="rigs">'):page.index("</table>")]
    assert table.index("<b>sim</b>") < table.index("<b>maixbit</b>")
    assert '<tr class="bad">' in table and '<tr class="warn">' in table
    assert 'class="story bad" id="story-sim"' in page


def test_html_needs_readable_runs(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "run.jsonl").write_text("{\n")
    assert hil_main(["report", "html", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "no readable runs" in err and "run.jsonl:1" in err
    assert not (tmp_path / "r.html").exists()


def test_chart_handles_gaps_single_points_and_far_limits():
    pts = [Point("a", 1.0, None, 100.0), Point("b", None), Point("c", 1.2, 0.5, 100.0, False)]
    svg = line_chart("t", "s", pts)
    assert svg.count("<circle") == 2 and "<polyline" not in svg   # the gap breaks the line
    assert line_chart("t", "s", [Point("a", None)]) == ""
    assert "<circle" in line_chart("t", "bytes", [Point("a", 5.0)])
    ticks = _nice_ticks(0, 8192, "bytes")
    assert all(t % 1024 == 0 for t in ticks)


# ---------------------------------------------------------------- Chromium screenshot

def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and raw RGB(A) rows of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = 0
    channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        if ftype == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [r if channels == 3 else _drop_alpha(r) for r in rows]


def _drop_alpha(row: bytes) -> bytes:
    return bytes(b for i, b in enumerate(row) if i % 4 != 3)


def _screenshot(html: Path, png: Path, profile: Path) -> None:
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1400,1000",
            html.resolve().as_uri()]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        pytest.fail("chromium did not finish the screenshot within 120 s")
    finally:
        try:  # chromium's helpers share its session: leave none behind
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    assert png.is_file(), f"chromium wrote no screenshot: {out.decode(errors='replace')[-500:]}"


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="needs Debian's chromium at /usr/bin/chromium (.ci/run installs it: "
                           "apt-get install -y chromium)")
def test_page_renders_in_headless_chromium(results, tmp_path):
    _, html = _page(results, tmp_path)
    png = tmp_path / "report.png"
    _screenshot(html, png, tmp_path / "chromium-profile")
    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (1400, 1000)
    colours: set[bytes] = set()
    non_white = 0
    for y in range(0, height, 2):
        row = rows[y]
        for x in range(0, width * 3, 6):
            px = row[x:x + 3]
            colours.add(px)
            if px[0] < 235 or px[1] < 235 or px[2] < 235:
                non_white += 1
    sampled = (height // 2) * (width // 2)
    assert len(colours) > 50, f"only {len(colours)} colours: blank or broken page"
    assert 0.03 < non_white / sampled < 0.9, f"non-white fraction {non_white / sampled:.3f}"
    # the outcome colours of the grid are on screen: passed green, failed red, broken amber
    for rgb in ((0x2e, 0x9e, 0x44), (0xd4, 0x3c, 0x3c), (0xe8, 0xa3, 0x17)):
        assert bytes(rgb) in colours, f"colour #{bytes(rgb).hex()} not on the screenshot"
    artifacts = ROOT / "results" / "artifacts"
    if artifacts.is_dir():
        shutil.copy(png, artifacts / "report-html-screenshot.png")


def test_key_figures_default_option_and_fallback(results, tmp_path):
    from hil.report.keyfigs import choose
    runs, _ = find_runs(results)
    assert choose(runs) == ["threshold_sd_bytes", "leak_per_cycle_bytes"]   # defaults present
    assert choose(runs, ("load_time_sd_v3_s",)) == ["load_time_sd_v3_s"]
    out = tmp_path / "k.html"
    assert hil_main(["report", "html", str(results), "-o", str(out),
                     "--key-figure", "load_time_sd_v3_s", "--key-figure", "sys_heap_free_bytes"]) == 0
    page = out.read_text()
    keyfigs = page[page.index('<div class="keyfigs">'):page.index("Every rig, night by night")]
    assert keyfigs.count('<figure class="kf">') == 2
    assert 'aria-label="load_time_sd_v3_s"' in keyfigs and 'aria-label="threshold_sd_bytes"' not in keyfigs
    # suites of one's own, none of the defaults: the measurements judged against limits
    from dataclasses import replace
    from hil.report.runs import Measurement
    renamed = [replace(r, tests=tuple(replace(t, measurements=tuple(
        Measurement("my_" + m.name, m.value, m.unit, m.low, m.high, m.ok) for m in t.measurements))
        for t in r.tests)) for r in runs]
    assert choose(renamed) == ["my_leak_per_cycle_bytes", "my_load_time_flash_s",
                               "my_load_time_sd_v3_s"]    # judged in as many runs; then by name
