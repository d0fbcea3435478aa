"""Allure metadata: environment.properties (merged across workers) and categories."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import hil.errors as errors
from hil.report.allure_env import (CATEGORIES_FILE, ENVIRONMENT_FILE, allure3_config,
                                   categories, format_environment, infrastructure_error_names,
                                   read_environment, write_allure3_config, write_allure_metadata)

META = dict(rig="sim", board="maix-bit", firmware="maixpy-v0.6.2-full",
            firmware_version="v0.6.2-75-g973361c0d", hil_version="0.1.0", host="ci-1")


def test_writes_environment_and_categories(tmp_path):
    write_allure_metadata(tmp_path / "allure-results", **META)
    env_text = (tmp_path / "allure-results" / ENVIRONMENT_FILE).read_text()
    assert env_text.splitlines() == [
        "rig=sim", "board=maix-bit", "firmware=maixpy-v0.6.2-full",
        "firmware_version=v0.6.2-75-g973361c0d", "hil_version=0.1.0", "host=ci-1"]
    cats = json.loads((tmp_path / "allure-results" / CATEGORIES_FILE).read_text())
    assert cats == categories()
    assert not list((tmp_path / "allure-results").glob("*.part"))


def test_workers_merge_their_values(tmp_path):
    write_allure_metadata(tmp_path, **META)
    write_allure_metadata(tmp_path, **(META | {"rig": "sim-regressed",
                                               "firmware": "maixpy-v0.6.3-nightly-regressed"}))
    write_allure_metadata(tmp_path, **META)            # again: no duplicates
    env = read_environment(tmp_path / ENVIRONMENT_FILE)
    assert env["rig"] == "sim, sim-regressed"
    assert env["firmware"] == "maixpy-v0.6.2-full, maixpy-v0.6.3-nightly-regressed"
    assert env["host"] == "ci-1"


def test_parallel_workers_lose_nothing(tmp_path):
    rigs = [f"rig{i}" for i in range(8)]
    threads = [threading.Thread(target=write_allure_metadata, args=(tmp_path,),
                                kwargs=META | {"rig": r}) for r in rigs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    got = read_environment(tmp_path / ENVIRONMENT_FILE)["rig"].split(", ")
    assert sorted(got) == sorted(rigs)


def test_properties_escaping_round_trips(tmp_path):
    env = {"rig": "a=b:c#d!e", "port": "rfc2217://10.0.0.5:4001", "note": " lead\nnext\\x",
           "user": "Jürgen ✓ 🙂", "key with space": "v"}
    text = format_environment(env)
    assert text.isascii()
    assert "rig=a\\=b\\:c\\#d\\!e" in text
    p = tmp_path / "e.properties"
    p.write_text(text)
    assert read_environment(p) == env


def test_every_infrastructure_error_is_in_the_infrastructure_category():
    names = infrastructure_error_names()
    for cls in (errors.LinkError, errors.BootTimeout, errors.PowerError, errors.IspError,
                errors.TransferError, errors.ReplProtocolError, errors.InfrastructureError):
        assert cls.__name__ in names
    assert "KpuLoadError" not in names and "ConfigError" not in names


def _category(status: str, message: str) -> str | None:
    """First category that matches, as Allure does (partial regex match, like Allure 3)."""
    for c in categories():
        if status not in c.get("matchedStatuses", [status]):
            continue
        if "messageRegex" in c and not re.search(c["messageRegex"], message):
            continue
        return c["name"]
    return None


def test_categories_sort_infrastructure_from_firmware():
    assert _category("broken", "hil.errors.BootTimeout: rig sim: no banner").startswith(
        "Infrastructure")
    assert _category("broken", "hil.errors.LinkError: rig maixbit: port lost").startswith(
        "Infrastructure")
    assert _category("broken", "hil.errors.KpuLoadError: [MAIXPY]kpu: load error:2006") == \
        "Firmware errors raised on the device"
    assert _category("failed", "AssertionError: threshold below band") == \
        "Firmware regressions (assertions)"
    assert _category("broken", "TypeError: bad call") == "Broken tests (test or framework bugs)"
    # the regexes match whole messages too (Allure 2 uses a whole-string match)
    for c in categories():
        if "messageRegex" in c:
            assert re.fullmatch(c["messageRegex"], "x\nhil.errors.LinkError: y\nz") or \
                "Firmware" in c["name"]


def test_allure3_config_carries_the_categories(tmp_path):
    path = write_allure3_config(tmp_path / "allurerc.json", name="nightly")
    cfg = json.loads(path.read_text())
    assert cfg == allure3_config("nightly")
    assert cfg["categories"] == categories()
    assert cfg["plugins"]["awesome"]["options"]["singleFile"] is True


ALLURE = Path(__file__).resolve().parents[1] / ".hil" / "allure" / "node_modules" / ".bin" / "allure"
DEMO_TESTS = '''
from hil.errors import KpuLoadError, LinkError

def test_ok():
    pass

def test_firmware_regression():
    assert 2068480 >= 2150000, "threshold below band"

def test_cable():
    raise LinkError("rig maixbit: /dev/ttyUSB0 lost")

def test_kpu():
    raise KpuLoadError("[MAIXPY]kpu: load error:2006, ERR_NO_MEM: memory not enough", 2006)
'''


@pytest.mark.skipif(not ALLURE.exists(),
                    reason="allure CLI not installed project-locally; see docs/reports.md: "
                           "npm install --prefix .hil/allure allure@3.18.0")
def test_allure3_generates_with_our_categories_and_environment(tmp_path):
    (tmp_path / "test_demo.py").write_text(DEMO_TESTS)
    results = tmp_path / "allure-results"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-p", "no:hil.plugin", f"--alluredir={results}", "test_demo.py"],
                   cwd=tmp_path, capture_output=True, timeout=120)
    write_allure_metadata(results, **META)
    cfg = write_allure3_config(tmp_path / "allurerc.json", single_file=False)
    out = tmp_path / "allure-report"
    proc = subprocess.run([str(ALLURE), "generate", "--config", str(cfg), str(results),
                           "-o", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    widget = json.loads((out / "widgets" / "categories.json").read_text())
    roots = {widget["nodes"][r]["name"]: widget["nodes"][r]["statistic"] for r in widget["roots"]}
    assert roots == {
        "Infrastructure: rig, link, power or boot (not the firmware)": {"total": 1, "broken": 1},
        "Firmware errors raised on the device": {"total": 1, "broken": 1},
        "Firmware regressions (assertions)": {"total": 1, "failed": 1},
    }
    env = json.loads((out / "widgets" / "allure_environment.json").read_text())
    assert {e["name"]: e["values"] for e in env}["firmware_version"] == ["v0.6.2-75-g973361c0d"]
