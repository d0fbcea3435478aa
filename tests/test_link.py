"""Link and console: any pyserial URL, a log of every byte, expect errors that show the tail."""
from __future__ import annotations

import os
import socket
import threading
import time
import tty
from pathlib import Path

import pytest

from hil.console import Console
from hil.errors import BootTimeout, LinkError, ReplProtocolError
from hil.link import Link, SerialLog, escape


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    yield master, path
    os.close(master)
    os.close(slave)


@pytest.fixture
def tcp_peer():
    """A socket:// URL and the server-side connection (accepted in a thread)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    holder: dict = {"url": url}

    def peer() -> socket.socket:
        thread.join(5)
        return accepted[0]
    holder["peer"] = peer
    yield holder
    for conn in accepted:
        conn.close()
    server.close()


def test_missing_port_is_one_line_naming_the_port() -> None:
    with pytest.raises(LinkError) as info:
        Link("/dev/ttyUSB-nonexistent-9")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot open serial port /dev/ttyUSB-nonexistent-9: no such device")


def test_refused_rfc2217_names_the_url() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()   # nothing listens there now
    with pytest.raises(LinkError, match=rf"cannot open serial port socket://127.0.0.1:{port}: "):
        Link(f"socket://127.0.0.1:{port}")


def test_loop_url_round_trip_and_log(tmp_path: Path) -> None:
    log = SerialLog(tmp_path / "a.log", "loop")
    with Link("loop://", 115200, log) as link:
        link.write(b"hello\r\nworld\x04")
        assert Console(link).read_exact(13, 1.0) == b"hello\r\nworld\x04"
        assert link.read(10, 0.05) == b""
        assert link.tail(5) == b"orld\x04"
        link.log = SerialLog(tmp_path / "b.log")   # the plugin swaps logs per test
        log.close()
        link.write(b"x")
        assert link.read(1, 1.0) == b"x"
    first = (tmp_path / "a.log").read_text().splitlines()
    assert first[0].startswith("# serial log loop started ")
    records = [line.split(" ", 2)[1:] for line in first[1:]]
    assert ["#", "opened loop:// at 115200 baud"] in records
    assert [">", "hello\\r\\nworld\\x04"] in records
    assert ["<", "hello\\r\\n"] in records and ["<", "world\\x04"] in records
    second = (tmp_path / "b.log").read_text()
    assert "> x" in second and "< x" in second and "closed loop://" in second
    assert "hello" not in second


def test_escape() -> None:
    assert escape(b"a\\b\r\n\t\x00\xff") == "a\\\\b\\r\\n\\t\\x00\\xff"


def test_pty_reads_fast_and_tolerates_missing_modem_lines(pty_pair, tmp_path: Path) -> None:
    master, path = pty_pair
    log = SerialLog(tmp_path / "pty.log")
    with Link(path, 115200, log) as link:
        os.write(master, b"abc")
        start = time.monotonic()
        assert link.read(100, 2.0) == b"abc"      # returns at once, not after the timeout
        assert time.monotonic() - start < 1.0
        assert link.set_line("dtr", False) is False
        assert link.set_line("rts", True) is False
        assert link.lines_wired is False
        link.write(b"xyz")
        assert os.read(master, 10) == b"xyz"
        link.set_baud(1500000)
        assert link.baud == 1500000
    text = (tmp_path / "pty.log").read_text()
    assert text.count("not wired") == 1
    assert "baud 1500000" in text


def test_socket_url_reads_what_is_there_and_reports_loss(tcp_peer) -> None:
    link = Link(tcp_peer["url"])
    peer = tcp_peer["peer"]()
    try:
        peer.sendall(b"0123456789")
        time.sleep(0.05)
        assert link.read(4096, 1.0) == b"0123456789"
        link.write(b"ping")
        assert peer.recv(10) == b"ping"
        peer.close()
        with pytest.raises(LinkError, match="link lost"):
            link.read(10, 1.0)
    finally:
        link.close()


def test_console_expect_and_read_until_share_one_buffer(tmp_path: Path) -> None:
    with Link("loop://", log=SerialLog(tmp_path / "c.log")) as link:
        console = Console(link)
        link.write(b"boot...\r\nMicroPython v0.6.2 on x\r\n>>> rest")
        assert console.expect([rb"MicroPython (v\S+)", rb"never"], 2.0) == 0
        assert console.match.group(1) == b"v0.6.2"
        assert console.before == b"boot...\r\n"
        assert console.read_until(b">>> ", 1.0) == b" on x\r\n>>> "
        assert console.read(100, 0.1) == b"rest"


def test_console_timeout_shows_tail_and_log_path(tmp_path: Path) -> None:
    log_path = tmp_path / "t.log"
    with Link("loop://", log=SerialLog(log_path)) as link:
        console = Console(link)
        link.write(b"x" * 300 + b"garbled\r\n")
        with pytest.raises(BootTimeout) as info:
            console.expect(rb">>> ", 0.2, what="waiting for the MaixPy prompt", error=BootTimeout)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("waiting for the MaixPy prompt within 0.2 s on loop://")
        assert 'garbled\\r\\n"' in message and str(log_path) in message
        assert message.count("x") < 260   # only the tail (~200 bytes) is shown
        # nothing was lost: the bytes are still there for the next reader
        with pytest.raises(ReplProtocolError, match="waiting for 'never'"):
            console.read_until(b"never", 0.1)
        assert console.read_until(b"garbled", 0.1).endswith(b"xgarbled")


def test_received_lines_are_joined_across_reads(tmp_path: Path) -> None:
    """One record per received line, whatever the reads; an open line ends when something else
    is logged, and is on disk before it ends (a crash or `tail -f` sees it)."""
    path = tmp_path / "boot.log"
    log = SerialLog(path, "boot")
    for piece in (b"Micro", b"Python v0.6", b".2-75\r", b"\nType \"help()\"\r\n>", b">> "):
        log.rx(piece)
    assert path.read_text().endswith(" < >>> ")              # the prompt is there, its line still open
    log.tx(b"import gc\r")
    log.rx(b"import gc\r\n>>> ")
    log.note("soft reset")
    log.rx(b"done\n")
    log.close()
    records = [line.split(" ", 2)[1:] for line in path.read_text().splitlines()[1:]]
    assert records == [["<", "MicroPython v0.6.2-75\\r\\n"], ["<", 'Type "help()"\\r\\n'], ["<", ">>> "],
                       [">", "import gc\\r"], ["<", "import gc\\r\\n"], ["<", ">>> "], ["#", "soft reset"],
                       ["<", "done\\n"]]
