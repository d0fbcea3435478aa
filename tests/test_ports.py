"""Every port form pyserial opens works as a rig's port (hil.ports): rfc2217://, socket://, loop://,
spy://, alt://, hwgrep:// (and cp2110:// where hidapi is installed); bad ones are one line naming
serial.port; the link really carries bytes through each, and a wrapped device shares its lock."""
from __future__ import annotations

import os
import socket
import threading
import tty
from pathlib import Path

import pytest
import serial.tools.list_ports
import serial.tools.list_ports_common

from hil import ports
from hil.cli import main as hil_main
from hil.errors import RigConfigError
from hil.farm.claim import lock_key
from hil.link import Link, SerialLog
from hil.rig import parse_rig

ROOT = Path(__file__).resolve().parent.parent
GOOD = [
    "/dev/ttyUSB0",
    "rfc2217://bench2.example.org:7001?ign_set_control&timeout=5",
    "socket://127.0.0.1:7000?logging=debug",
    "loop://",
    "loop://?logging=info",
    "spy:///dev/ttyUSB0",
    "spy:///dev/ttyUSB0?file=/tmp/spy.txt&raw&color&all",
    "alt:///dev/ttyUSB0?class=PosixPollSerial",
    "hwgrep://1a86:7523",
    "hwgrep://USB VID:PID=0403:6010&skip_busy&n=2",
]
BAD = [
    ("tcp://127.0.0.1:5000", "unsupported URL scheme 'tcp' (allowed: alt://, "),
    ("ttyUSB0", "must be an absolute device path"),
    ("socket://127.0.0.1", "needs host and port"),
    ("rfc2217://h:1?timeout=nan", "timeout='nan' must be a number of seconds"),
    ("rfc2217://h:1?timeout=inf", "timeout='inf' must be a number of seconds"),
    ("loop://?logging=loud", "logging='loud' must be one of debug, info, warning, error"),
    ("spy://ttyUSB0", "spy:// wraps a device path, e.g. spy:///dev/ttyUSB0"),
    ("spy:///dev/ttyUSB0?hexdump", "unknown spy:// option 'hexdump' (allowed: file, color, raw, all)"),
    ("spy://rfc2217://h:1", "spy:// wraps a device path"),
    ("alt:///dev/ttyUSB0?class=NoSuchSerial", "unknown class: 'NoSuchSerial'"),
    ("hwgrep://", "hwgrep:// needs a pattern"),
    ("hwgrep://1a86:(7523", "is not a regular expression"),
    ("hwgrep://1a86&n=1", "n='1': pyserial takes n as the Nth match counted from 1, and only from 2 on"),
    ("hwgrep://1a86&busy", "unknown hwgrep:// option 'busy'"),
]


def rig_with_port(tmp_path: Path, port: str) -> Path:
    text = (ROOT / "rigs" / "maixbit.toml").read_text().replace('port = "/dev/ttyUSB0"', f'port = "{port}"')
    path = tmp_path / "maixbit.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("port", GOOD)
def test_every_pyserial_form_is_a_rig_port(tmp_path: Path, port: str) -> None:
    assert parse_rig(rig_with_port(tmp_path, port)).serial.port == port


@pytest.mark.parametrize(("port", "why"), BAD, ids=[p for p, _ in BAD])
def test_bad_ports_are_one_line_naming_the_key(tmp_path: Path, port: str, why: str) -> None:
    with pytest.raises(RigConfigError) as info:
        parse_rig(rig_with_port(tmp_path, port))
    text = str(info.value)
    assert "\n" not in text and "maixbit.toml: serial.port: " in text and why in text, text


def test_the_schemes_are_pyserials() -> None:
    assert {"alt", "hwgrep", "loop", "rfc2217", "socket", "spy"} <= set(ports.schemes())


def test_hil_rigs_check_takes_a_hwgrep_rig(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert hil_main(["rigs", "check", str(rig_with_port(tmp_path, "hwgrep://1a86:7523"))]) == 0
    assert "on hwgrep://1a86:7523" in capsys.readouterr().out


# -- the link through each form ---------------------------------------------------------------------
@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def round_trip(link: Link, master: int) -> None:
    link.write(b"ping\r\n")
    assert os.read(master, 100) == b"ping\r\n"
    os.write(master, b"pong\r\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = link.read(100, timeout=2.0)
        assert chunk, f"nothing came back (got {got!r})"
        got += chunk
    assert got == b"pong\r\n"


def test_spy_dumps_every_byte_the_link_moves(tmp_path: Path, pty_pair) -> None:
    master, path = pty_pair
    dump = tmp_path / "spy.txt"
    with Link(f"spy://{path}?file={dump}", 115200) as link:
        round_trip(link, master)
    lines = dump.read_text().splitlines()
    def moved(direction: str) -> bytes:   # spy's hexdump: "<time> TX   <offset>  70 69 6E 67 ..."
        return bytes.fromhex("".join(line.split("  ")[2] for line in lines if line.split()[1:2] == [direction]))
    assert moved("TX") == b"ping\r\n"
    assert moved("RX") == b"pong\r\n", lines         # spy's own reads: the link did not bypass them


def test_alt_opens_the_device_through_another_class(pty_pair) -> None:
    master, path = pty_pair
    with Link(f"alt://{path}?class=PosixPollSerial", 115200) as link:
        assert type(link.serial).__name__ == "PosixPollSerial"
        round_trip(link, master)


def test_hwgrep_opens_the_port_whose_usb_id_matches(pty_pair, monkeypatch: pytest.MonkeyPatch) -> None:
    master, path = pty_pair
    info = serial.tools.list_ports_common.ListPortInfo(path, skip_link_detection=True)
    info.description, info.hwid = "USB2.0-Serial", "USB VID:PID=1A86:7523 LOCATION=1-1.4"
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda include_links=False: [info])
    with Link("hwgrep://1a86:7523", 115200) as link:
        assert link.serial.port == path
        round_trip(link, master)
    with pytest.raises(Exception) as missing:
        Link("hwgrep://dead:beef", 115200)
    assert "cannot open serial port hwgrep://dead:beef: no ports found matching regexp" in str(missing.value)


def test_socket_and_loop_carry_bytes(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    try:
        with Link(f"socket://127.0.0.1:{server.getsockname()[1]}", 115200) as link:
            thread.join(5)
            link.write(b"hi")
            assert accepted[0].recv(10) == b"hi"
            accepted[0].sendall(b"yo")
            assert link.read(10, timeout=2.0) == b"yo"
    finally:
        for conn in accepted:
            conn.close()
        server.close()
    with Link("loop://?logging=warning", 115200, SerialLog(tmp_path / "loop.log")) as link:
        link.write(b"echo\n")
        assert link.read(10, timeout=1.0) == b"echo\n"


def test_rfc2217_reaches_the_simulated_board(sim_server) -> None:
    with Link(sim_server.endpoints["rfc2217"], 115200) as link:
        link.write(b"\x03\x03\r\n")
        seen = b""
        for _ in range(20):
            seen += link.read(4096, timeout=0.25)
            if b">>>" in seen:
                break
        assert b">>>" in seen, seen


def test_a_wrapped_device_shares_the_devices_lock(tmp_path: Path) -> None:
    plain = parse_rig(rig_with_port(tmp_path, "/dev/ttyUSB0"))
    spied = parse_rig(rig_with_port(tmp_path, "spy:///dev/ttyUSB0?file=/tmp/x"))
    alt = parse_rig(rig_with_port(tmp_path, "alt:///dev/ttyUSB0?class=PosixPollSerial"))
    assert lock_key(plain, tmp_path) == lock_key(spied, tmp_path) == lock_key(alt, tmp_path)
    assert lock_key(parse_rig(rig_with_port(tmp_path, "hwgrep://1a86:7523")), tmp_path).startswith("url-")
