"""The simulated board's transport: pty / RFC 2217 / raw TCP front ends, modem lines, pacing, bauds."""
from __future__ import annotations

import os
import random
import socket
import threading
import time

import pytest
import serial
from serial import rfc2217

from hil.boards import BOARDS, SEQUENCES, STEP_PAUSE_S
from k210sim.events import EventLog
from k210sim.pacing import GARBLE_TABLE, LinePacer, garble
from k210sim.program import ProgramHalted
from k210sim.server import SimServer
from k210sim.uart import TX_QUEUE_LIMIT, SerialLine
from sim_board_fakes import Factory, FakeFrontEnd

PAYLOAD = bytes(random.Random(7).randrange(256) for _ in range(4096)) + b"\xff\xff\x00\xff"


@pytest.fixture
def start(tmp_path):
    servers: list[SimServer] = []

    def _start(pace: bool = False, kind: str = "echo", expect: int = 0, **kw) -> SimServer:
        factory = Factory(kind, expect)
        kw.setdefault("tcp", ("127.0.0.1", 0))
        sim = SimServer(tmp_path / f"state{len(servers)}", pace=pace, program_factory=factory, **kw)
        sim.factory = factory
        servers.append(sim.start())
        return sim

    threads_before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    yield _start
    for s in servers:
        s.stop()
    # Everything the servers started is gone: threads, fds, socket files, pty links.
    leaked = [t.name for t in set(threading.enumerate()) - threads_before
              if t.name.startswith("sim-") and t.is_alive()]
    assert not leaked
    assert len(os.listdir("/proc/self/fd")) <= fds_before
    for s in servers:
        assert not any(p.name.endswith((".sock", "ttyMAIX0")) for p in s.state_dir.iterdir())


def read_exactly(port, n: int, timeout: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n and time.monotonic() < deadline:
        buf += port.read(n - len(buf))
    return buf


def open_url(url: str, **kw):
    return serial.serial_for_url(url, baudrate=kw.pop("baudrate", 115200), timeout=kw.pop("timeout", 0.5), **kw)


def settle_greeting(port) -> None:
    time.sleep(0.05)
    port.reset_input_buffer()


# -- round trips through the echo stand-in -----------------------------------------------------
@pytest.mark.parametrize("endpoint", ["pty", "pty_device", "rfc2217", "tcp"])
def test_pyserial_round_trip(start, endpoint):
    sim = start()
    with open_url(sim.endpoints[endpoint]) as port:
        settle_greeting(port)
        port.write(PAYLOAD)
        assert read_exactly(port, len(PAYLOAD)) == PAYLOAD


def test_greeting_reaches_a_client_that_is_already_open(start):
    sim = start()
    with open_url(sim.endpoints["rfc2217"]) as port:
        sim.board.press_reset()
        assert port.read_until(b"FIRMWARE\r\n") .endswith(b"FIRMWARE\r\n")


# -- pacing ------------------------------------------------------------------------------------
def test_pacing_round_trip_11520_bytes_at_115200_takes_about_a_second(start):
    sim = start(pace=True)
    data = bytes(range(256)) * 45
    with open_url(sim.endpoints["pty"], timeout=2) as port:
        settle_greeting(port)
        t0 = time.monotonic()
        port.write(data)
        got = read_exactly(port, len(data))
        took = time.monotonic() - t0
    assert got == data
    assert 0.8 < took < 1.5, took


def test_pacing_each_direction(start):
    data = bytes(range(256)) * 45
    sim = start(pace=True, kind="sink", expect=len(data))
    with open_url(sim.endpoints["rfc2217"], timeout=2) as port:
        settle_greeting(port)
        t0 = time.monotonic()
        port.write(data)
        prog = sim.factory.last
        assert prog.done.wait(5)
        assert 0.8 < prog.done_at - t0 < 1.5, prog.done_at - t0
        assert bytes(prog.data) == data
        t0 = time.monotonic()
        sim.line.uart.write(data)
        got = read_exactly(port, len(data))
        took = time.monotonic() - t0
    assert got == data
    assert 0.8 < took < 1.5, took


def test_pace_off_is_fast(start):
    sim = start(pace=False)
    data = bytes(range(256)) * 45
    with open_url(sim.endpoints["pty"]) as port:
        settle_greeting(port)
        t0 = time.monotonic()
        port.write(data)
        assert read_exactly(port, len(data)) == data
        assert time.monotonic() - t0 < 0.5


def test_pacer_token_bucket_keeps_line_rate():
    pacer = LinePacer(True)
    t0 = time.monotonic()
    sent = 0
    while sent < 5760:                 # half a second at 115200
        pacer.send(23, 115200)
        sent += 23
    assert 0.45 < time.monotonic() - t0 < 0.6


# -- baud rates ----------------------------------------------------------------------------------
def test_garble_is_deterministic_and_never_ascii():
    assert all(g != b and g >= 0x80 for b, g in enumerate(GARBLE_TABLE))
    assert garble(b"hello") == garble(b"hello") != b"hello"


@pytest.mark.parametrize("endpoint", ["pty", "rfc2217"])
def test_baud_mismatch_garbles_both_ways(start, endpoint):
    sim = start(kind="sink")
    with open_url(sim.endpoints[endpoint]) as port:
        settle_greeting(port)
        sim.line.uart.set_baud(57600)               # board switches, host still at 115200
        sim.line.uart.write(b"hello\r\n")
        assert read_exactly(port, 7) == garble(b"hello\r\n")
        port.write(b"ping")
        prog = sim.factory.last
        deadline = time.monotonic() + 2
        while len(prog.data) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bytes(prog.data) == garble(b"ping")
        port.baudrate = 57600                       # host follows: clean again
        time.sleep(0.05)                            # the pty front end polls every 10 ms
        sim.line.uart.write(b"hello\r\n")
        assert read_exactly(port, 7) == b"hello\r\n"
        port.write(b"pong")
        deadline = time.monotonic() + 2
        while len(prog.data) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bytes(prog.data[4:]) == b"pong"
    kinds = [(e["kind"], e.get("side"), e.get("baud")) for e in sim.events.since(0)]
    assert ("baud", "board", 57600) in kinds and ("baud", "host", 57600) in kinds


def test_pty_baud_change_seen_quickly(start):
    sim = start()
    seq = sim.events.last_seq
    with open_url(sim.endpoints["pty"]) as port:
        port.baudrate = 1500000
        e = sim.events.wait_for(lambda e: e["kind"] == "baud" and e.get("source") == "pty", since=seq, timeout=1)
        assert e is not None and e["baud"] == 1500000


def test_board_baud_resets_to_115200_on_every_boot(start):
    sim = start()
    sim.line.uart.set_baud(1500000)
    assert sim.board.status()["baud"] == 1500000
    sim.board.press_reset()
    assert sim.events.wait_for(lambda e: e["kind"] == "boot" and e["boot"] == 2)
    assert sim.board.status()["baud"] == 115200


# -- modem lines -----------------------------------------------------------------------------------
def _line_events(sim, since: int, source: str) -> list[tuple[str, bool]]:
    out = []
    for e in sim.events.since(since):
        if e["kind"] == "lines" and e["source"] == source:
            out.append((e["set"], e[e["set"]]))
    return out


def _expected(steps) -> list[tuple[str, bool]]:
    return [(l, v) for (l1, v1, l2, v2) in steps for (l, v) in ((l1, v1), (l2, v2))]


def test_rfc2217_sees_dtr_rts_in_order_with_timestamps(start):
    """Stock pyserial: every setter reaches the board, in order, timestamped, ~STEP_PAUSE_S apart."""
    sim = start()
    steps = SEQUENCES["isp_dan"]
    with open_url(sim.endpoints["rfc2217"]) as port:
        seq = sim.events.last_seq
        for l1, v1, l2, v2 in steps:
            setattr(port, l1, v1)
            setattr(port, l2, v2)
            time.sleep(STEP_PAUSE_S)
        assert _line_events(sim, seq, "rfc2217") == _expected(steps)
        lines = [e for e in sim.events.since(seq) if e["kind"] == "lines"]
        times = [e["t"] for e in lines]
        assert times == sorted(times)
        assert times[2] - times[1] >= STEP_PAUSE_S * 0.9   # the pause between steps is visible


def _final_boot(sim, since: int) -> dict:
    """The last boot after a sequence. A sequence may restart the chip more than once on the
    way (from pyserial's open state DTR=RTS=asserted, step 1 of isp_dan pulses RESET)."""
    time.sleep(0.1)
    boots = [e for e in sim.events.since(since) if e["kind"] == "boot"]
    assert boots, sim.events.since(since)
    return boots[-1]


@pytest.fixture
def fast_rfc2217_acks(monkeypatch):
    """pyserial's RFC 2217 client sleeps 50 ms before looking for each option's ack; a USB
    adapter's ioctl takes ~1 ms. Poll every 0.5 ms instead, so the step-3 pair (two setters
    kflash expects to land within the reset settle time) arrives as it would on real USB."""
    def wait(self, timeout=3):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_ready():
                return
            time.sleep(0.0005)
        raise serial.SerialException(f"timeout while waiting for option {self.name!r}")
    monkeypatch.setattr(rfc2217.TelnetSubnegotiation, "wait", wait)


@pytest.mark.parametrize("board", ["maix-bit", "maix-go"])
def test_rfc2217_kflash_sequences_reach_isp_and_firmware(start, fast_rfc2217_acks, board):
    sim = start(board=board)
    spec = BOARDS[board]
    with open_url(sim.endpoints["rfc2217"]) as port:
        for key, mode, greeting in ((spec.isp_sequence, "isp", b"ISP\r\n"),
                                    (spec.boot_sequence, "firmware", b"FIRMWARE\r\n")):
            seq = sim.events.last_seq
            port.reset_input_buffer()
            for l1, v1, l2, v2 in SEQUENCES[key]:
                setattr(port, l1, v1)
                setattr(port, l2, v2)
                time.sleep(STEP_PAUSE_S)
            assert _final_boot(sim, seq)["mode"] == mode, (key, sim.events.since(seq))
            assert port.read_until(greeting).endswith(greeting)
            assert _line_events(sim, seq, "rfc2217") == _expected(SEQUENCES[key])


def _send_modem(path: str, dtr: bool, rts: bool) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(f"DTR={int(dtr)} RTS={int(rts)}".encode(), path)


@pytest.mark.parametrize("board", ["maix-bit", "maix-go"])
def test_modem_sock_datagrams_drive_reset_and_boot(start, board):
    """What the LD_PRELOAD shim sends for a client on the pty: the full line state per ioctl."""
    sim = start(board=board)
    spec = BOARDS[board]
    path = sim.endpoints["modem"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with open_url(sim.endpoints["pty"]) as port:
        state = {"dtr": False, "rts": False}     # what the shim's faked TIOCMGET remembers
        for key, mode, greeting in ((spec.isp_sequence, "isp", b"ISP\r\n"),
                                    (spec.boot_sequence, "firmware", b"FIRMWARE\r\n")):
            seq = sim.events.last_seq
            for l1, v1, l2, v2 in SEQUENCES[key]:
                for line, value in ((l1, v1), (l2, v2)):
                    state[line] = value
                    _send_modem(path, state["dtr"], state["rts"])
                time.sleep(STEP_PAUSE_S)
            assert _final_boot(sim, seq)["mode"] == mode, (key, sim.events.since(seq))
            assert port.read_until(greeting).endswith(greeting)
            assert len([e for e in sim.events.since(seq) if e["kind"] == "lines" and e["source"] == "modem"]) == 6


def test_modem_sock_bad_datagram_is_logged(start):
    sim = start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"DSR=1", sim.endpoints["modem"])
    e = sim.events.wait_for(lambda e: e["kind"] == "modem-error", timeout=2)
    assert e is not None and "DSR=1" in e["error"]


def test_rfc2217_close_drops_lines_and_break_is_logged(start):
    sim = start(board="maix-bit")
    port = open_url(sim.endpoints["rfc2217"])
    port.rts = True                        # maix-bit: RESET held
    port.dtr = False
    port.break_condition = True
    port.break_condition = False
    assert sim.board.status()["reset_held"]
    seq = sim.events.last_seq
    port.close()
    boot = sim.events.wait_for(lambda e: e["kind"] == "boot", since=seq, timeout=2)
    assert boot is not None and boot["mode"] == "firmware"        # released by the hang-up
    assert [(e["on"]) for e in sim.events.since(0) if e["kind"] == "break"] == [True, False]


def test_rfc2217_new_client_replaces_old(start):
    sim = start()
    first = open_url(sim.endpoints["rfc2217"])
    second = open_url(sim.endpoints["rfc2217"])
    try:
        assert sim.events.wait_for(lambda e: e["kind"] == "client" and e["action"] == "replaced", timeout=2)
        settle_greeting(second)
        second.write(b"still here")
        assert read_exactly(second, 10) == b"still here"
    finally:
        second.close()
        try:
            first.close()
        except Exception:
            pass


def test_pty_without_client_never_blocks_the_board(start):
    sim = start()
    uart = sim.line.uart
    uart.write(b"x" * 300_000)           # far more than a pty buffer holds, nobody reading
    uart.flush(timeout=5)
    assert not uart._tx and sim.events.wait_for(lambda e: e["kind"] == "tx-drop", timeout=1)


# -- the Uart programs see -----------------------------------------------------------------------
@pytest.fixture
def line():
    ln = SerialLine(EventLog(), pace=False)
    yield ln
    ln.close()


def test_uart_read_timeout_read_exact_and_halt(line):
    host = FakeFrontEnd()
    line.attach_frontend(host)
    uart = line.new_uart()
    assert uart.read(1, timeout=0.05) == b""
    line.from_host(b"abc", host)
    assert uart.read_exact(4, timeout=0.05) == b""        # nothing consumed
    assert uart.read(10, timeout=0.05) == b"abc"
    line.from_host(b"defg", host)
    assert uart.read_exact(2, timeout=1) == b"de" and uart.read_exact(2) == b"fg"
    uart.write(b"out")
    uart.flush()
    assert host.received == b"out"
    got: list[BaseException] = []

    def reader():
        try:
            uart.read(1)
        except BaseException as exc:
            got.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.05)
    line.attach_uart(None)                       # the board stops this boot's UART
    t.join(1)
    assert got and isinstance(got[0], ProgramHalted)
    for call in (lambda: uart.write(b"x"), lambda: uart.read(1, timeout=1), uart.flush):
        with pytest.raises(ProgramHalted):
            call()
    line.from_host(b"lost", host)                # no UART attached: dropped, no error


def test_uart_write_blocks_past_4k_until_drained():
    ln = SerialLine(EventLog(), pace=True)
    try:
        host = FakeFrontEnd(baud=1_000_000)
        ln.attach_frontend(host)
        uart = ln.new_uart()
        uart.set_baud(1_000_000)                 # 100 kB/s
        t0 = time.monotonic()
        uart.write(b"z" * (TX_QUEUE_LIMIT + 10_000))
        assert time.monotonic() - t0 > 0.05      # had to wait for the line to drain ~10 kB
        uart.flush()
        assert len(host.received) == TX_QUEUE_LIMIT + 10_000
    finally:
        ln.close()


def test_interrupt_char_is_dropped_and_calls_back(line):
    host = FakeFrontEnd()
    uart = line.new_uart()
    hits = []
    uart.set_interrupt_char(3, lambda: hits.append(threading.current_thread().name))
    line.from_host(b"ab\x03cd\x03", host)
    assert uart.read(10, timeout=1) == b"abcd" and len(hits) == 2
    uart.set_interrupt_char(None, None)
    line.from_host(b"\x03", host)
    assert uart.read(10, timeout=1) == b"\x03" and len(hits) == 2


def test_modem_sock_drain_orders_bytes_before_a_baud_change(start, tmp_path):
    """kflash writes its boot command and at once drops to 115200; under the shim a DRAIN
    barrier before the tcsetattr makes those bytes arrive at the old baud, every time."""
    sim = start(kind="sink", pace=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ctl:
        ctl.bind("")                                   # autobind: the simulator can answer
        ctl.settimeout(5)
        with open_url(sim.endpoints["pty"], baudrate=1500000) as port:
            sim.line.uart.set_baud(1500000)
            prog = sim.factory.last
            for i in range(5):
                prog.data.clear()
                port.baudrate = 1500000
                time.sleep(0.03)
                port.write(b"boot-%d" % i * 200)       # 1200 bytes: 8 ms of line time
                t0 = time.monotonic()
                ctl.sendto(b"DRAIN", sim.endpoints["modem"])
                assert ctl.recv(16) == b"OK"
                waited = time.monotonic() - t0
                port.baudrate = 115200
                deadline = time.monotonic() + 2
                while len(prog.data) < 1200 and time.monotonic() < deadline:
                    time.sleep(0.005)
                assert bytes(prog.data) == b"boot-%d" % i * 200
                assert waited > 0.004                  # the barrier waited for the line
