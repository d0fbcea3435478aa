"""Security basics: loopback-only servers, private control sockets, no shell, no secrets in logs."""
from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hil.errors import LinkError, PowerError
from k210sim.errors import SimError
from hil.link import MASK, Link, SerialLog, redact, redact_url
from hil.drivers.power.base import run_command

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("k210sim.server", reason="the simulator is not built yet")


# -- servers listen on 127.0.0.1 --------------------------------------------------------------------
def test_simulator_listens_on_loopback_by_default(sim_factory):
    sim = sim_factory(tcp=("127.0.0.1", 0))
    assert sim.endpoints["rfc2217"].startswith("rfc2217://127.0.0.1:")
    assert sim.endpoints["tcp"].startswith("socket://127.0.0.1:")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_simulator_refuses_other_addresses_without_listen_any(tmp_path, host):
    from k210sim.server import SimServer
    with pytest.raises(SimError) as info:
        SimServer(tmp_path / "s", rfc2217=(host, 0)).start()
    assert f"refusing to listen on {host}: not a loopback address (use --listen-any)" in str(info.value)
    assert not (tmp_path / "s" / "control.sock").exists()


def test_hil_sim_serve_refuses_any_address_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "hil", "sim", "serve", "--state", str(tmp_path / "s"),
                           "--rfc2217", "0.0.0.0:0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("k210sim: rfc2217: refusing to listen on 0.0.0.0: not a loopback address "
                                   "(use --listen-any)")


# -- control sockets are 0600 -----------------------------------------------------------------------
@pytest.mark.parametrize("deep", [False, True], ids=["short-path", "long-path"])
def test_control_and_modem_sockets_are_private(sim_factory, tmp_path, deep):
    state = tmp_path / ("d" * 70) / ("e" * 40) if deep else tmp_path / "s"
    sim = sim_factory(state)
    for name in ("control.sock", "modem.sock"):
        real = os.path.realpath(state / name)
        assert stat.S_ISSOCK(os.stat(real).st_mode)
        assert os.stat(real).st_mode & 0o777 == 0o600, name
        if deep:   # served from a short private directory, linked from the long path
            assert os.stat(os.path.dirname(real)).st_mode & 0o777 == 0o700


# -- power commands never go through a shell ----------------------------------------------------------
def test_command_arguments_are_not_interpreted_by_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    out = run_command(["echo", f"$(touch {marker}); `touch {marker}` | cat > {marker}"], 10, "test")
    assert out == f"$(touch {marker}); `touch {marker}` | cat > {marker}\n"
    assert not marker.exists()


def test_a_shell_line_is_one_program_name(tmp_path):
    with pytest.raises(PowerError) as info:
        run_command([f"true && touch {tmp_path / 'x'}"], 10, "rig r: power.on")
    assert "command not found" in str(info.value)
    assert not (tmp_path / "x").exists()


def test_no_shell_anywhere_in_the_package():
    """No shell=True, os.system or os.popen in hil/ (the simulator's user code is sandboxed apart)."""
    offenders = []
    for path in (ROOT / "hil").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "shell" and \
                    not (isinstance(node.value, ast.Constant) and node.value.value is False):
                offenders.append(f"{path}:{node.value.lineno} shell=")
            if isinstance(node, ast.Attribute) and node.attr in ("system", "popen") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                offenders.append(f"{path}:{node.lineno} os.{node.attr}")
    assert offenders == []


# -- no secrets in logs or reports ---------------------------------------------------------------------
@pytest.mark.parametrize("url,shown", [
    ("rfc2217://admin:hunter22@10.0.0.5:7000", "rfc2217://admin:***@10.0.0.5:7000"),
    ("socket://:hunter22@10.0.0.5:7000", "socket://:***@10.0.0.5:7000"),
    ("socket://10.0.0.5:7000?token=abc123&logging=debug", "socket://10.0.0.5:7000?token=***&logging=debug"),
    ("rfc2217://10.0.0.5:7000?api_key=k1&timeout=3", "rfc2217://10.0.0.5:7000?api_key=***&timeout=3"),
    ("rfc2217://10.0.0.5:7000?ign_set_control", "rfc2217://10.0.0.5:7000?ign_set_control"),
    ("/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0", "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"),
])
def test_port_urls_are_redacted(url, shown):
    assert redact_url(url) == shown


def test_secret_env_values_are_masked_in_serial_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_POWER_TOKEN", "pw-0123456789")
    monkeypatch.setenv("SHORT_TOKEN", "abc")          # too short to mask safely: left alone
    log = SerialLog(tmp_path / "s.log")
    log.note("power command on: relayctl --token pw-0123456789 3 on")
    log.tx(b"print('pw-0123456789')\r\n")
    log.note("opened rfc2217://u:pa55word@host:1 for rig r")
    log.close()
    text = (tmp_path / "s.log").read_text()
    assert "pw-0123456789" not in text and "pa55word" not in text
    assert f"relayctl --token {MASK} 3 on" in text and f"rfc2217://u:{MASK}@host:1" in text
    assert redact("abc", None) == "abc"


def test_link_errors_and_notes_never_show_the_password(tmp_path):
    log = SerialLog(tmp_path / "l.log")
    with pytest.raises(LinkError) as info:
        Link("rfc2217://user:pa55word@127.0.0.1:1", log=log)   # nothing listens on port 1
    log.close()
    assert "pa55word" not in str(info.value) and f"user:{MASK}@127.0.0.1:1" in str(info.value)
    assert "pa55word" not in (tmp_path / "l.log").read_text()


def test_board_port_is_redacted_for_records():
    from dataclasses import replace

    from hil.board import Board
    from hil.rig import load_rig
    rig = load_rig("maixbit", ROOT / "rigs")
    rig = replace(rig, serial=replace(rig.serial, port="rfc2217://lab:pa55word@10.1.2.3:4000"))
    board = Board(rig)
    assert board.port == f"rfc2217://lab:{MASK}@10.1.2.3:4000"
