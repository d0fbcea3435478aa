"""The [cases] table of firmware profiles (hil/cases.py): what a build does with a fixture or a
call where it differs from the manifest, read with one-line errors naming file and key; and the
suites holding a board to it, end to end on a simulated rig: a declared load (a known weakness,
said in the run record and as a warning), an exact text, and a fault the rig recovers from.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hil.cases import CALL_CASES
from hil.errors import FirmwareProfileError
from hil.firmware import load_profile, parse_profile
from hil.kmodel.fixtures import get_fixture
from jsonl import read_records

ROOT = Path(__file__).resolve().parent.parent
FULL = ROOT / "rigs" / "firmware" / "maixpy-v0.6.2-full.toml"


def profile_with(tmp_path: Path, cases: str, name: str = "cases-test", base: Path = FULL) -> Path:
    text = base.read_text().replace(f'name = "{base.stem}"', f'name = "{name}"')
    path = tmp_path / f"{name}.toml"
    path.write_text(text + "\n[cases]\n" + cases)
    return path


# -- reading -----------------------------------------------------------------------------------------
def test_a_profile_without_cases_takes_the_manifest() -> None:
    full = load_profile("maixpy-v0.6.2-full")
    assert full.cases == {}
    case = full.fixture_case(get_fixture("broken_first_layer_not_conv"))
    assert (case.outcome, case.error, case.text, case.declared) == ("error", "first_layer", full.errors.first_layer,
                                                                    False)
    assert full.fixture_case(get_fixture("v3_min")).loads
    assert full.fixture_case(get_fixture("v5_conv_relu")).error == "version"       # v5: not a version it loads
    assert full.call_case("non_kmodel_path").error == "path_format"
    assert full.call_case("offset_erased", "version").text == full.errors.version   # the bytes decide
    with pytest.raises(KeyError, match="not a call case"):
        full.call_case("nonsense")


def test_declared_cases(tmp_path: Path) -> None:
    p = parse_profile(profile_with(tmp_path, '''
broken_first_layer_not_conv = { outcome = "loads", note = "this build does not check" }
broken_zero_layers = { outcome = "error", error = "read_file" }
broken_truncated = { outcome = "error", text = "[MAIXPY]kpu: load error:2005, something else" }
v5_conv_relu = { outcome = "fault", note = "the board crashes" }
missing_file_flash = { outcome = "error", text = "[Errno 5] EIO" }
'''))
    loads = p.fixture_case(get_fixture("broken_first_layer_not_conv"))
    assert loads.loads and loads.known_weakness and loads.note == "this build does not check"
    zero = p.fixture_case(get_fixture("broken_zero_layers"))
    assert (zero.error, zero.text) == ("read_file", p.errors.read_file) and not zero.known_weakness
    assert p.errors.code_of(p.fixture_case(get_fixture("broken_truncated")).text) == 2005
    fault = p.fixture_case(get_fixture("v5_conv_relu"))
    assert fault.outcome == "fault" and fault.known_weakness and fault.describe() == "faults (needs a reset)"
    assert p.call_case("missing_file_flash").text == "[Errno 5] EIO"
    assert p.call_case("missing_file").text == p.errors.missing_file      # undeclared: the default


@pytest.mark.parametrize("cases, key, problem", [
    ('no_such_fixture = { outcome = "loads", note = "x" }', "cases.no_such_fixture",
     "not a model fixture of the manifest nor a call case"),
    ('broken_zero_layer = { outcome = "loads", note = "x" }', "cases.broken_zero_layer", "similar: "),
    ('broken_empty = { outcome = "explodes" }', "cases.broken_empty.outcome", "'explodes' is not one of: loads, error, fault"),
    ('broken_empty = { outcome = "error" }', "cases.broken_empty.error", "needs exactly one of error"),
    ('broken_empty = { outcome = "error", error = "version", text = "x" }', "cases.broken_empty.error",
     "needs exactly one of error"),
    ('broken_empty = { outcome = "error", error = "no_such_key" }', "cases.broken_empty.error",
     "'no_such_key' is not an [errors] key"),
    ('broken_empty = { outcome = "loads" }', "cases.broken_empty.note", "say why in a note"),
    ('broken_empty = { outcome = "fault" }', "cases.broken_empty.note", "say why in a note"),
    ('broken_empty = { outcome = "loads", note = "x", error = "version" }', "cases.broken_empty.error",
     'only outcome = "error" takes an error text'),
    ('broken_empty = { outcome = "loads", note = "x", colour = "red" }', "cases.broken_empty.colour", "unknown key"),
    ('broken_empty = "loads"', "broken_empty", "must be a table"),
])
def test_bad_cases_are_one_line_naming_file_and_key(tmp_path: Path, cases: str, key: str, problem: str) -> None:
    path = profile_with(tmp_path, cases + "\n")
    with pytest.raises(FirmwareProfileError) as info:
        parse_profile(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert key in message and problem in message, message


def test_an_empty_error_text_needs_a_case(tmp_path: Path) -> None:
    """An [errors] text left empty ("no such error in this build") must not be what a case expects
    by default: the profile says what the build does instead."""
    base = ROOT / "rigs" / "firmware" / "csdk-agent-reference.toml"
    text = base.read_text().split("\n[cases]")[0] + "\n[cases]\n"
    path = tmp_path / "csdk-agent-reference.toml"
    first = 'broken_first_layer_not_conv = { outcome = "loads", note = "not checked" }\n'
    for cases, message in [
        ("", r"errors\.first_layer: empty, but broken_first_layer_not_conv expects this error by default"),
        (first, r"errors\.path_format: empty, but non_kmodel_path expects this error by default"),
        ('broken_first_layer_not_conv = { outcome = "error", error = "first_layer" }\n',
         r"cases\.broken_first_layer_not_conv\.error: errors\.first_layer is empty in this profile"),
    ]:
        path.write_text(text + cases)
        with pytest.raises(FirmwareProfileError, match=message):
            parse_profile(path)
    path.write_text(text + first + 'non_kmodel_path = { outcome = "loads", note = "any path" }\n')
    assert parse_profile(path).call_case("non_kmodel_path").known_weakness


def test_call_cases_are_documented() -> None:
    doc = (ROOT / "docs" / "rigs-and-fixtures.md").read_text()
    missing = [name for name in CALL_CASES if f"`{name}`" not in doc]
    assert not missing, f"call cases not in docs/rigs-and-fixtures.md: {missing}"


# -- the suites hold a board to its cases (simulated full build, pace off) ------------------------------
ARM = '''"""Arms the simulator's brownout at the kpu.load of one case (a test-only plugin)."""
import pytest

from k210sim.control import ControlClient


@pytest.fixture(autouse=True)
def _brownout_for_the_fault_case(request):
    if "broken_zero_layers" in request.node.nodeid:
        board = request.getfixturevalue("board")
        ControlClient(board.sim.endpoints["control"]).fault("brownout_kpu_load", count=1)
    yield
'''
CASES = '''broken_v3_arch_nonzero = { outcome = "loads", note = "wrong on purpose: the build rejects it" }
broken_empty = { outcome = "error", text = "[MAIXPY]kpu: load error:2005, ERR_READ_FILE: read file failed" }
broken_random_bytes = { outcome = "error", error = "body_size" }
broken_zero_layers = { outcome = "fault", note = "pretend: the board browns out on it" }
broken_bad_version = { outcome = "fault", note = "wrong on purpose: it answers an error" }
'''


def test_suites_hold_the_board_to_its_cases(tmp_path: Path) -> None:
    rigs = tmp_path / "rigs"
    (rigs / "firmware").mkdir(parents=True)
    profile_with(rigs / "firmware", CASES)
    rig = (ROOT / "rigs" / "sim.toml").read_text().replace('name = "sim"', 'name = "cases"')
    rig = rig.replace('profile = "maixpy-v0.6.2-full"', 'profile = "cases-test"')
    rig = re.sub(r'(?m)^pace = "line"', 'pace = "off"', rig)
    (rigs / "cases.toml").write_text(rig)
    (tmp_path / "arm_brownout.py").write_text(ARM)
    results = tmp_path / "results"
    ids = [f"suites/test_load_errors.py::test_broken_model_rejected[broken_{name}]"
           for name in ("v3_arch_nonzero", "empty", "random_bytes", "zero_layers", "bad_version")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *ids, f"--rig={rigs / 'cases.toml'}",
         f"--hil-results={results}", "-q", "-p", "no:cacheprovider", "-p", "arm_brownout"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    run = next(p for p in results.iterdir() if (p / "run.jsonl").exists())
    tests = {r["nodeid"].split("[")[-1].rstrip("]"): r for r in read_records(run) if r["type"] == "test"}
    assert len(tests) == 5, sorted(tests)
    outcome = {name: r["outcome"] for name, r in tests.items()}
    assert outcome == {"broken_v3_arch_nonzero": "failed",
                       "broken_empty": "passed", "broken_random_bytes": "failed", "broken_zero_layers": "passed",
                       "broken_bad_version": "failed"}, {n: (r["outcome"], r["message"]) for n, r in tests.items()}
    # a declared load that does not happen, a wrong declared error, a fault that is a clean error
    assert "should load it ([cases] broken_v3_arch_nonzero: wrong on purpose" in tests["broken_v3_arch_nonzero"]["message"]
    assert "expected the body_size error" in tests["broken_random_bytes"]["message"]
    assert "says the board faults; it refused the model cleanly" in tests["broken_bad_version"]["message"]
    # the fault: the board browned out, the ladder brought it back, the record says how
    fault = tests["broken_zero_layers"]
    props = dict(fault.get("properties", []))
    assert "known weakness" in props["known_weakness"] and "pretend: the board browns out" in props["known_weakness"]
    assert re.search(r"the load ended in \w+; the board came back at recovery rung '[a-z ]+'", props["known_weakness"])
    assert any(s["name"] == "recover" for s in fault["steps"]), [s["name"] for s in fault["steps"]]
    assert fault["duration"] < 60
    assert "KnownWeakness" in done.stdout and "pretend: the board browns out" in done.stdout
    assert "properties" not in tests["broken_empty"]
    json.dumps(tests)   # the record is plain JSON
