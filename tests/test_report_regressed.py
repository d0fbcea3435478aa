"""The regressed night, told at a glance: the real records of the healthy simulated build (rig sim)
and the deliberately regressed one (rig sim-regressed), kept by tests/data/records/take_real.py.

Done when (issue 19): the summary names the 3 failures with their reasons in its first lines and
shows the heap drop as one grouped line, in the Markdown and on the page (checked in headless
Chromium: text and a 1280x800 screenshot); two rig names of one board are matched test by test.
Expectations come from the records themselves where they can, so a re-recorded night (other
thresholds, a renamed profile) keeps these tests meaningful.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hil.cli import main as hil_main
from hil.report.runs import load_run

DATA = Path(__file__).parent / "data" / "records" / "regressed_night"
FULL, REGRESSED = DATA / "full", DATA / "regressed"
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREEN = (1280, 800)
HEAP_LINE = re.compile(r"\d+ sys_heap_free_\* readings in \d+ tests fell \d+-\d+ KiB "
                       r"\(most by \d+ KiB: sys_heap_free\w* \d+ -> \d+\)")


def _failures() -> list[tuple[str, str]]:
    """(nodeid, reason head) of every failed test in the regressed record."""
    run = load_run(REGRESSED)
    out = [(t.nodeid, t.message.split(" (")[0]) for t in run.tests if t.failed]
    assert len(out) == 3, out
    return sorted(out)


def test_the_records_are_two_rig_names_of_one_board():
    full, reg = load_run(FULL), load_run(REGRESSED)
    assert full.rigs != reg.rigs
    assert full.board_of(full.rigs[0]) == reg.board_of(reg.rigs[0])
    assert full.family_of(full.rigs[0]) == reg.family_of(reg.rigs[0])


def test_markdown_opens_with_the_failures_and_their_reasons(capsys):
    code = hil_main(["report", "compare", str(FULL), str(REGRESSED)])
    md = capsys.readouterr().out
    assert code == 1
    lines = md.splitlines()
    assert lines[2].startswith("**REGRESSION: 3 new failures")
    assert lines[4] == "**New failures (3)**"
    firsts = [line for line in lines[5:12] if line.startswith("- `")]
    assert len(firsts) == 3
    for (nodeid, reason), line in zip(_failures(), firsts):
        assert line == f"- `{nodeid}`: {reason}"
    # the band violations that fail the tests are named beside them, and only there
    bands = [line for line in lines[5:12] if line.startswith("  - band: ")]
    assert len(bands) == 3 and sum("below its band" in b for b in bands) == 2
    assert any("above its ceiling" in b for b in bands)
    # then the firmware, then the heap drop as one line, then what was compared with what
    fw = next(i for i, line in enumerate(lines) if line.startswith("**Firmware changed**: "))
    worse = next(i for i, line in enumerate(lines)
                 if line.startswith("**Measurements worse past tolerance"))
    compared = next(i for i, line in enumerate(lines) if line.startswith("**Compared**: "))
    assert 5 < fw < worse < compared < 25
    heap = [line for line in lines[worse:compared] if HEAP_LINE.search(line)]
    assert len(heap) == 1
    assert len([line for line in lines[worse:compared] if line.startswith("- ")]) <= 4
    assert "same board and firmware family, test by test" in lines[compared]
    assert "3 beside the failures above" in lines[worse]


def test_compare_across_rig_names_matches_tests_by_default(capsys):
    assert hil_main(["report", "compare", "--json", str(FULL), str(REGRESSED)]) == 1
    data = json.loads(capsys.readouterr().out)
    counts = data["counts"]
    assert counts["new_failure"] == 3
    assert counts["added"] == counts["gone"] == counts["added_failing"] == 0
    assert data["match_by"] == "auto" and len(data["compared"]) == 1
    failing = [t for g in data["groups"] for t in g["tests"] if t["kind"] == "new_failure"]
    assert sorted((t["nodeid"], t["reason"]) for t in failing) == _failures()
    # by rig name only, nothing lines up: what the issue saw before
    assert hil_main(["report", "compare", "--json", "--match-by", "rig", str(FULL),
                     str(REGRESSED)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["gone"] > 50 and data["counts"]["new_failure"] == 0


class _Text(HTMLParser):
    """The page's visible text, one entry per block, in document order (style/title dropped)."""
    BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "tr", "summary", "section", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[str] = [""]
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "title", "svg"):
            self.skip += 1
        if tag in self.BLOCKS:
            self.blocks.append("")

    def handle_endtag(self, tag):
        if tag in ("style", "title", "svg"):
            self.skip -= 1
        if tag in self.BLOCKS:
            self.blocks.append("")

    def handle_data(self, data):
        if not self.skip:
            self.blocks[-1] += data

    def lines(self) -> list[str]:
        return [" ".join(b.split()) for b in self.blocks if b.strip()]


def _page(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(FULL, results / "full")
    shutil.copytree(REGRESSED, results / "regressed")
    out = tmp_path / "report.html"
    assert hil_main(["report", "html", str(results), "-o", str(out)]) == 0
    return out


def _first_lines_hold_the_story(text_lines: list[str]) -> None:
    first = text_lines[:40]
    joined = "\n".join(first)
    for nodeid, reason in _failures():
        short = nodeid.removeprefix("suites/")
        assert any(short in line and reason in line for line in first), (short, reason, joined)
    assert sum(bool(HEAP_LINE.search(line)) for line in first) == 1, joined
    assert any("same board and firmware family" in line for line in first), joined


def test_page_first_lines_name_the_failures_and_the_heap_drop(tmp_path):
    parser = _Text()
    parser.feed(_page(tmp_path).read_text())
    lines = parser.lines()
    _first_lines_hold_the_story(lines)
    # worst rig first: the regressed rig's line comes before the healthy one's
    reg, full = load_run(REGRESSED).rigs[0], load_run(FULL).rigs[0]
    table = [line for line in lines if line.startswith((f"{reg} (", f"{full} ("))]
    assert table[0].startswith(f"{reg} (") and "REGRESSION" in table[0]


# ---------------------------------------------------------------- in a real browser

def _chromium(args: list[str], profile: Path) -> str:
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--window-size={SCREEN[0]},{SCREEN[1]}", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        pytest.fail(f"chromium {args[0]} did not finish within 120 s")
    finally:
        try:  # chromium's helpers share its session: leave none behind
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return out.decode("utf-8", "replace")


# Measures, in the browser, where the story landed; only in a copy made for this test (the page
# itself carries no script).
PROBE = """<script>
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const q = s => Array.from(document.querySelectorAll(s));
document.body.setAttribute('data-probe', JSON.stringify({
  view: [window.innerWidth, window.innerHeight],
  failures: q('ol.failures > li').map(e => [e.querySelector('summary').innerText, box(e)]),
  changes: q('ul.changes > li').map(e => [e.innerText.split('\\n')[0], box(e)]),
  charts: q('figure.kf').map(e => [e.querySelector('svg').getAttribute('aria-label'), box(e)]),
  rigs: q('table.rigs tr').slice(1).map(e => [e.innerText.split('\\t')[0], box(e)]),
}));
</script>"""


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="needs Debian's chromium at /usr/bin/chromium (.ci/run installs it: "
                           "apt-get install -y chromium)")
def test_first_screen_in_chromium_holds_the_failures_with_their_reasons(tmp_path):
    from test_report_html import decode_png
    page = _page(tmp_path)
    # 1. the page's text as Chromium parsed it
    dom = _chromium(["--dump-dom", page.resolve().as_uri()], tmp_path / "profile-dom")
    parser = _Text()
    parser.feed(dom)
    _first_lines_hold_the_story(parser.lines())

    # 2. where things are laid out in a 1280x800 window
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(["--dump-dom", probe.resolve().as_uri()], tmp_path / "profile-probe")
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, dom[-2000:]
    import html
    lay = json.loads(html.unescape(m.group(1)))
    # Layout depends on the width only (nothing is sized by the viewport height). --dump-dom
    # leaves room for window decorations (innerHeight 657 of 800); the screenshot below has
    # all 800 rows, so positions are checked against the screen's height.
    width, height = lay["view"][0], SCREEN[1]
    assert width == SCREEN[0], lay["view"]
    assert len(lay["failures"]) == 3
    for (nodeid, reason), (summary, (left, top, right, bottom)) in zip(_failures(), lay["failures"]):
        assert nodeid.removeprefix("suites/") in summary and reason in " ".join(summary.split())
        assert 0 <= left and right <= width and bottom <= height, (summary, bottom)
    heap = [c for c in lay["changes"] if HEAP_LINE.search(c[0])]
    assert len(heap) == 1 and heap[0][1][3] <= height
    assert {c[0] for c in lay["charts"]} >= {"threshold_sd_bytes", "threshold_flash_bytes",
                                             "leak_per_cycle_bytes", "suite wall time"}
    assert all(box[1] < height for _, box in lay["charts"])       # each chart starts on screen
    assert all(box[3] <= height for _, box in lay["rigs"])
    assert lay["rigs"][0][0].startswith(load_run(REGRESSED).rigs[0])

    # 3. the screenshot shows it: the story's red edge runs past the last failure, the
    # regressed rig's colour is in the key-figure charts on the right
    png = tmp_path / "regressed-night.png"
    _chromium([f"--screenshot={png}", page.resolve().as_uri()], tmp_path / "profile-shot")
    w, h, rows = decode_png(png.read_bytes())
    assert (w, h) == SCREEN
    red = bytes((0xd4, 0x3c, 0x3c))
    first_top = int(lay["failures"][0][1][1]) + 2
    edge_x = next(x for x in range(0, 200) if rows[first_top][3 * x:3 * x + 3] == red)
    red_rows = [y for y in range(h) if rows[y][3 * edge_x:3 * edge_x + 3] == red]
    assert red_rows and red_rows[-1] >= lay["failures"][-1][1][3], (red_rows[:1], red_rows[-1:])
    blue = bytes((0x1f, 0x6f, 0xb2))      # the first (worst) rig's colour
    right = sum(row[3 * x:3 * x + 3] == blue for row in rows for x in range(w // 2, w, 2))
    assert right > 20, right
    artifacts = ROOT / "results" / "artifacts"
    if artifacts.is_dir():
        shutil.copy(png, artifacts / "report-regressed-night.png")


def test_a_first_night_still_shows_its_failures_with_reasons(tmp_path):
    shutil.copytree(REGRESSED, tmp_path / "results" / "regressed")
    out = tmp_path / "report.html"
    assert hil_main(["report", "html", str(tmp_path / "results"), "-o", str(out)]) == 0
    parser = _Text()
    parser.feed(out.read_text())
    lines = parser.lines()
    assert any("first night, 3 failing" in line for line in lines[:12])
    for nodeid, reason in _failures():
        assert any(nodeid.removeprefix("suites/") in line and reason in line for line in lines[:30])
