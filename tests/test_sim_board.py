"""The simulated board's core: storage, firmware images, the reset/boot state machine, control socket."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
import sys
import threading
import time
from pathlib import Path

import pytest

from hil.boards import BOARDS, RESET_SETTLE_S, SEQUENCES, STEP_PAUSE_S, get_board
from k210sim.errors import SimError
from k210sim.builds import load_build
from k210sim.board import SimBoard, default_program
from k210sim.control import ControlClient
from k210sim.events import EventLog
from k210sim.firmware_image import MAGIC, boot_image, make_image, wrap
from k210sim.program import SilentProgram
from k210sim.server import SimServer
from k210sim.storage import BoardStorage, FlashImage, StateDirLock
from k210sim.uart import SerialLine
from sim_board_fakes import Factory, FakeFrontEnd

MIB16 = 16 * 1024 * 1024
FULL = "maixpy-v0.6.2-full"
_IMAGES: dict[str, bytes] = {}


def image(name: str = FULL) -> bytes:
    if name not in _IMAGES:
        _IMAGES[name] = make_image(load_build(name))
    return _IMAGES[name]


# -- storage ------------------------------------------------------------------------------------
def test_new_flash_is_erased_and_sized(tmp_path):
    f = FlashImage(tmp_path / "flash.img", MIB16)
    try:
        assert f.created and f.size == MIB16 == (tmp_path / "flash.img").stat().st_size
        assert f.read(0, 16) == b"\xff" * 16 and f.read(MIB16 - 4, 4) == b"\xff" * 4
        f.write(0x300000, b"abc")
        f.erase(0x300001, 1)
        assert f.read(0x300000, 4) == b"a\xffc\xff"
        with pytest.raises(ValueError, match="outside"):
            f.write(MIB16 - 1, b"xy")
    finally:
        f.close()
    again = FlashImage(tmp_path / "flash.img", MIB16)
    assert not again.created and again.read(0x300000, 1) == b"a"
    again.close()


def test_journalled_write_not_applied_is_replayed_on_open(tmp_path):
    f = FlashImage(tmp_path / "flash.img", MIB16)
    f._log(b"W", 0x200000, 5, b"hello")        # crash between journal and apply
    f.close()
    assert os.pread(os.open(tmp_path / "flash.img", os.O_RDONLY), 5, 0x200000) == b"\xff" * 5
    g = FlashImage(tmp_path / "flash.img", MIB16)
    assert g.read(0x200000, 5) == b"hello"
    g.close()


def test_replay_reports_and_clears_journal(tmp_path):
    f = FlashImage(tmp_path / "flash.img", MIB16)
    f._log(b"W", 0x1000, 4, b"abcd")
    f.close()
    g = FlashImage(tmp_path / "flash.img", MIB16)
    assert g.recovered and g.recovered.startswith("replayed W 0x1000")
    assert (tmp_path / "flash.journal").stat().st_size == 0
    g.close()
    h = FlashImage(tmp_path / "flash.img", MIB16)
    assert h.recovered is None and h.read(0x1000, 4) == b"abcd"
    h.close()


def test_torn_journal_is_discarded(tmp_path):
    f = FlashImage(tmp_path / "flash.img", MIB16)
    f._log(b"W", 0x1000, 4096, b"\x00" * 4096)
    f.close()
    journal = tmp_path / "flash.journal"
    os.truncate(journal, journal.stat().st_size - 100)   # the journal write itself was cut short
    g = FlashImage(tmp_path / "flash.img", MIB16)
    assert g.recovered == "discarded torn journal"
    assert g.read(0x1000, 4096) == b"\xff" * 4096
    g.close()


def test_board_config_and_sd_persist(tmp_path):
    s = BoardStorage(tmp_path, MIB16)
    assert s.sd_present and s.sd_root == tmp_path / "sd" and s.flashfs_root.is_dir()
    s.set_config("gc_heap_size", 0x100000)
    s.set_sd_present(False)
    assert s.sd_root is None
    s.close()
    assert json.loads((tmp_path / "board.json").read_text()) == {"gc_heap_size": 0x100000, "sd": False}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp files left
    t = BoardStorage(tmp_path, MIB16)
    assert t.get_config("gc_heap_size") == 0x100000 and not t.sd_present
    t.close()


def test_state_dir_lock_refuses_second_user_and_takes_over_stale(tmp_path):
    (tmp_path / "sim.lock").write_text("999999\n")   # stale: written by a simulator that died
    a = StateDirLock(tmp_path)
    a.acquire()
    assert (tmp_path / "sim.lock").read_text().strip() == str(os.getpid())
    b = StateDirLock(tmp_path)
    with pytest.raises(SimError, match=f"in use by simulator pid {os.getpid()}"):
        b.acquire()
    a.release()
    b.acquire()
    b.release()


# -- firmware images ----------------------------------------------------------------------------
def test_make_image_is_a_kflash_wrapped_image_naming_its_build():
    prof = load_build(FULL)
    img = image()
    assert img[0] == 0x02
    (length,) = struct.unpack("<I", img[1:5])
    assert length == prof.image_size == len(img) - 37
    assert hashlib.sha256(img[:5 + length]).digest() == img[5 + length:]
    payload = img[5:5 + length]
    assert payload.startswith(MAGIC)
    meta = json.loads(payload[len(MAGIC):payload.index(b"\0", len(MAGIC))])
    assert meta == {"build": FULL, "version": prof.version, "build_date": prof.build_date}
    assert make_image(prof) == img                                   # deterministic
    assert make_image(prof, flags=0x00)[0] == 0x00


def test_image_filler_has_no_kmodel_header_at_4k_boundaries():
    img = image()
    for addr in range(0, len(img) - 12, 4096):
        head = img[addr:addr + 12]
        first, _, third = struct.unpack("<III", head)
        assert head[:4] != b"LDMK" and not (first == 3 and third == 0), hex(addr)


@pytest.fixture
def flash(tmp_path):
    f = FlashImage(tmp_path / "flash.img", MIB16)
    yield f
    f.close()


def test_boot_image_verdicts(flash):
    assert boot_image(flash).reason == "blank flash (no image at 0x0)"
    flash.write(0, image())
    r = boot_image(flash)
    assert r.ok and r.build == FULL and r.version == load_build(FULL).version
    flash.write(100, b"\x00")                                         # one flipped byte
    assert boot_image(flash).reason == "image sha256 mismatch"
    flash.write(0, b"\x02" + struct.pack("<I", MIB16))
    assert boot_image(flash).reason.startswith("bad image length")
    flash.write(0, wrap(b"\x90" * 1000))
    assert boot_image(flash).reason.startswith("not a simulator firmware image")
    flash.write(0, wrap(image()[5:-32], flags=0x03))
    assert "AES" in boot_image(flash).reason


# -- the board's reset/boot state machine -------------------------------------------------------
class Rig:
    def __init__(self, tmp_path: Path, board: str = "maix-bit", kind: str = "echo", **kw) -> None:
        self.events = EventLog()
        self.storage = BoardStorage(tmp_path, MIB16)
        self.storage.flash.write(0, image())
        self.line = SerialLine(self.events, pace=False)
        self.factory = Factory(kind)
        self.board = SimBoard(get_board(board), self.storage, self.line, self.events,
                              program_factory=self.factory, **kw)
        self.host = FakeFrontEnd()
        self.line.attach_frontend(self.host)

    def boot_event(self, number: int, timeout: float = 5.0) -> dict:
        e = self.events.wait_for(lambda e: e["kind"] == "boot" and e["boot"] == number, timeout=timeout)
        assert e is not None, f"no boot #{number}; events: {self.events.since(0)}"
        return e

    def close(self) -> None:
        self.board.close()
        self.line.close()
        self.storage.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_power_on_boots_firmware_from_flash(rig):
    assert rig.board.status()["mode"] == "off"
    rig.board.power(True)
    e = rig.boot_event(1)
    assert e["mode"] == "firmware" and e["build"] == FULL
    assert rig.host.wait_for(b"FIRMWARE\r\n")
    st = rig.board.status()
    assert st["power"] and st["mode"] == "firmware" and st["build"] == FULL and st["boots"] == 1
    assert rig.factory.boots == [("firmware", FULL)]


def test_power_off_halts_program_and_on_reboots(rig):
    rig.board.power(True)
    rig.boot_event(1)
    prog = rig.factory.last
    rig.board.power(False)
    assert rig.board.status()["mode"] == "off"
    assert prog.halted_seen or prog._stop.is_set()
    assert not [t for t in threading.enumerate() if t.name == "sim-cpu-1"]
    rig.board.power(True)
    rig.boot_event(2)
    assert rig.board.status()["boots"] == 2


def _apply_steps(board: SimBoard, steps, base: float, gap: float = 0.0005) -> None:
    """kflash's steps with synthetic timestamps (STEP_PAUSE_S apart), posted atomically."""
    with board._cond:   # the worker sees them all at once, in order: fully deterministic
        for i, (l1, v1, l2, v2) in enumerate(steps):
            t = base + i * STEP_PAUSE_S
            board.set_lines(**{l1: v1}, source="test", t=t)
            board.set_lines(**{l2: v2}, source="test", t=t + gap)


@pytest.mark.parametrize("board_name", ["maix-bit", "maix-go", "maix-dock", "maixduino", "kd233"])
@pytest.mark.parametrize("which", ["isp", "boot"])
def test_kflash_sequences_enter_the_mode_the_catalogue_says(tmp_path, board_name, which):
    r = Rig(tmp_path, board_name)
    try:
        r.board.power(True)
        r.boot_event(1)
        spec = BOARDS[board_name]
        steps = SEQUENCES[spec.isp_sequence if which == "isp" else spec.boot_sequence]
        _apply_steps(r.board, steps, time.monotonic() - 1.0)
        e = r.boot_event(2)
        assert e["mode"] == ("isp" if which == "isp" else "firmware"), r.events.since(0)
        assert r.host.wait_for(b"ISP\r\n" if which == "isp" else b"FIRMWARE\r\n")
        time.sleep(0.05)
        assert r.board.status()["boots"] == 2    # exactly one reset per sequence
    finally:
        r.close()


def test_boot_sampled_after_settle_not_at_release(rig):
    """BOOT pulled low *after* the settle time is too late: the chip already booted the firmware."""
    rig.board.power(True)
    rig.boot_event(1)
    base = time.monotonic() - 1.0
    with rig.board._cond:
        rig.board.set_lines(rts=True, source="test", t=base)                        # maix-bit: RESET
        rig.board.set_lines(rts=False, source="test", t=base + 0.1)                 # release
        rig.board.set_lines(dtr=True, source="test", t=base + 0.1 + RESET_SETTLE_S * 2)  # BOOT, late
    assert rig.boot_event(2)["mode"] == "firmware"


def test_reset_held_stops_cpu_at_once_and_short_pulse_restarts(rig):
    rig.board.power(True)
    rig.boot_event(1)
    prog = rig.factory.last
    rig.board.set_lines(rts=True, source="test")
    assert rig.events.wait_for(lambda e: e["kind"] == "reset" and e.get("held") is True)
    deadline = time.monotonic() + 2
    while rig.board.status()["mode"] != "silent" and time.monotonic() < deadline:
        time.sleep(0.005)
    st = rig.board.status()
    assert st["mode"] == "silent" and st["reset_held"] and prog._stop.is_set()
    time.sleep(0.1)
    assert rig.board.status()["boots"] == 1           # held: no boot
    rig.board.set_lines(rts=False, source="test")
    assert rig.boot_event(2)["mode"] == "firmware"


def test_program_reset_request_reboots(rig):
    rig.board.power(True)
    rig.boot_event(1)
    rig.line.from_host(b"!R", rig.host)
    e = rig.boot_event(2)
    assert e["mode"] == "firmware"
    assert [x["reason"] for x in rig.events.since(0) if x["kind"] == "reset-request"] == ["test asked for a reset"]


def test_button_reset_with_boot_enters_isp(rig):
    rig.board.power(True)
    rig.boot_event(1)
    rig.board.press_reset(boot=True)
    assert rig.boot_event(2)["mode"] == "isp"
    rig.board.press_reset()
    assert rig.boot_event(3)["mode"] == "firmware"


def test_blank_and_corrupt_flash_stay_silent(rig):
    rig.storage.flash.erase(0, 4096)
    rig.board.power(True)
    e = rig.boot_event(1)
    assert e["mode"] == "silent" and e["reason"] == "blank flash (no image at 0x0)"
    assert rig.factory.boots == []
    rig.storage.flash.write(0, image())
    rig.storage.flash.write(4096, b"\x00\x01")
    rig.board.press_reset()
    assert rig.boot_event(2)["reason"] == "image sha256 mismatch"
    assert rig.board.status()["mode"] == "silent"


def test_image_naming_unknown_build_stays_silent(rig):
    prof = load_build(FULL)
    fake = type(prof)(**{**prof.__dict__, "name": "no-such-build"})
    rig.storage.flash.write(0, make_image(fake))
    rig.board.power(True)
    e = rig.boot_event(1)
    assert e["mode"] == "silent" and "no-such-build" in e["reason"]


def test_halt_gives_up_on_a_program_that_will_not_stop(tmp_path):
    r = Rig(tmp_path, kind="stubborn", halt_timeout_s=0.2)
    try:
        r.board.power(True)
        r.boot_event(1)
        r.board.power(False)
        assert r.events.wait_for(lambda e: e["kind"] == "halt-timeout", timeout=2)
    finally:
        r.factory.last.release.set()
        r.close()


def test_default_program_falls_back_to_silent_without_modules(rig, monkeypatch):
    monkeypatch.setitem(sys.modules, "k210sim.isp.target", None)
    monkeypatch.setitem(sys.modules, "k210sim.maixpy", None)
    assert default_program("isp", None, None) is None
    assert default_program("firmware", None, load_build(FULL)) is None
    rig.board.program_factory = default_program
    rig.board.power(True)
    e = rig.boot_event(1)
    assert e["mode"] == "firmware" and "running silent" in e["note"]
    assert isinstance(rig.board._cpu.program, SilentProgram)


# -- control socket ---------------------------------------------------------------------------
@pytest.fixture
def sim(tmp_path):
    with SimServer(tmp_path / "state", rfc2217=None, pace=False, program_factory=Factory()) as s:
        yield s


def test_control_socket_status_power_reset_sd_events(sim):
    path = sim.control_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    c = ControlClient(path)
    st = c.status()
    assert {k: st[k] for k in ("ok", "power", "mode", "build", "board", "baud", "sd", "boots")} == {
        "ok": True, "power": True, "mode": "firmware", "build": FULL, "board": "maix-bit",
        "baud": 115200, "sd": True, "boots": 1}
    c.power(False)
    assert c.status()["mode"] == "off"
    c.power(True)
    assert sim.events.wait_for(lambda e: e["kind"] == "boot" and e["boot"] == 2)
    c.reset(boot=True)
    e = sim.events.wait_for(lambda e: e["kind"] == "boot" and e["mode"] == "isp")
    assert e is not None and c.status()["mode"] == "isp"
    c.reset()
    assert sim.events.wait_for(lambda e: e["kind"] == "boot" and e["boot"] == 4)
    c.sd(False)
    assert c.status()["sd"] is False and sim.storage.sd_root is None
    events = c.events()
    kinds = [e["kind"] for e in events]
    assert kinds.count("boot") == 4 and kinds.count("power") == 3 and "sd" in kinds
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    later = c.events(since=events[-2]["seq"])
    assert later == events[-1:]


def test_control_socket_errors_are_one_line(sim):
    c = ControlClient(sim.control_path)
    with pytest.raises(SimError, match="unknown fault 'melt'"):
        c.fault("melt")
    with pytest.raises(SimError, match="unknown command 'jump'"):
        c.call("jump")
    with pytest.raises(SimError, match="'on' must be true or false"):
        c.call("power", on="yes")
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sim.control_path))
    s.sendall(b"{not json\n" + json.dumps({"cmd": "status"}).encode() + b"\n")
    reply = b""
    while reply.count(b"\n") < 2:
        reply += s.recv(4096)
    s.close()
    first, second = (json.loads(x) for x in reply.splitlines())
    assert first["ok"] is False and first["error"].startswith("bad request")
    assert second["ok"] is True


def test_control_client_without_server(tmp_path):
    with pytest.raises(SimError, match="no simulator is listening"):
        ControlClient(tmp_path / "control.sock", timeout=1).status()
