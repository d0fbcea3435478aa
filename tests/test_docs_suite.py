"""The new KPU suite shown in docs/rigs-and-fixtures.md ("Writing a suite") runs as written, on a
simulated rig, and is short (under 30 lines): what a team writes to test its own model."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("k210sim.maixpy", reason="the simulated MaixPy firmware is not built yet")


def example() -> str:
    text = (ROOT / "docs" / "rigs-and-fixtures.md").read_text()
    section = text[text.index("## Writing a suite"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_suite_is_short_and_clean() -> None:
    code = example()
    assert len(code.strip().splitlines()) < 30
    assert "k210sim" not in code and "exec(" not in code and "struct" not in code


def test_the_documented_suite_passes_on_a_simulated_rig(tmp_path: Path) -> None:
    suite = tmp_path / "suites" / "test_our_model.py"
    suite.parent.mkdir()
    suite.write_text(example())
    rig = (ROOT / "rigs" / "sim.toml").read_text().replace('pace = "line"', 'pace = "off"')
    (tmp_path / "rigs").mkdir()
    (tmp_path / "rigs" / "sim.toml").write_text(rig)
    proc = subprocess.run([sys.executable, "-m", "pytest", str(suite), f"--rig={tmp_path / 'rigs' / 'sim.toml'}",
                           f"--hil-results={tmp_path / 'results'}", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "3 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_hil_init_writes_this_very_suite() -> None:
    """The example suite `hil init` puts in a new project is the one shown (and run) here."""
    assert (ROOT / "hil" / "project" / "templates" / "test_our_model.py.tmpl").read_text() == example()
