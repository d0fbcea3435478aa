"""File transfer over the raw REPL against the fake MicroPython REPL (tests/test_repl.py).

The fake maps /sd and /flash to a temp dir and can lose stdin bytes or corrupt file writes, so
the windowed receiver, the base64 fallback, the sha256 check, the retry and the ".part then
rename" rule are all exercised without the simulator.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from hil.console import Console
from hil.errors import TransferError
from hil.link import Link, SerialLog
from hil.device.micropython.repl import Repl
from hil.device.micropython.transfer import SLOW_WINDOW, Transfer, check_remote
from test_repl import FakeRepl


@pytest.fixture
def board(tmp_path: Path):
    """(fake, transfer) with /sd present; options through request.param."""
    made: list = []

    def make(**kw):
        (tmp_path / "root" / "sd").mkdir(parents=True, exist_ok=True)
        (tmp_path / "root" / "flash").mkdir(exist_ok=True)
        fake = FakeRepl(root=tmp_path / "root", **kw)
        link = Link(fake.url, log=SerialLog(tmp_path / "serial.log"))
        made.append((fake, link))
        return fake, Transfer(Repl(Console(link)))
    yield make
    for fake, link in made:
        link.close()
        fake.close()


def blob(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def test_put_get_streaming(board, tmp_path: Path) -> None:
    fake, t = board()
    data = blob(10_000) + b"\x03\x04\x01\x02" * 100    # control bytes must pass untouched
    seen: list[tuple[int, int]] = []
    assert t.put(data, "/sd/a.bin", progress=lambda done, total: seen.append((done, total))) \
        == hashlib.sha256(data).hexdigest()
    assert (fake.root / "sd" / "a.bin").read_bytes() == data
    assert not (fake.root / "sd" / "a.bin.part").exists()
    assert t.streaming is True
    assert fake.kbd_intr == [-1, 3]                     # Ctrl-C off for the data, restored after
    assert seen[-1] == (len(data), len(data))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[0][0] >= SLOW_WINDOW
    local = tmp_path / "back.bin"
    assert t.get("/sd/a.bin", local) == data
    assert local.read_bytes() == data and not (tmp_path / "back.bin.part").exists()


def test_empty_and_flash_files(board) -> None:
    fake, t = board()
    assert t.put(b"", "/flash/empty.py") == hashlib.sha256(b"").hexdigest()
    assert (fake.root / "flash" / "empty.py").read_bytes() == b""
    assert t.get("/flash/empty.py") == b""


def test_base64_fallback_without_stdin_buffer(board) -> None:
    fake, t = board(streaming=False)
    data = blob(5000, seed=2)
    t.put(data, "/sd/b.bin")
    assert t.streaming is False
    assert (fake.root / "sd" / "b.bin").read_bytes() == data
    assert t.get("/sd/b.bin") == data


def test_corrupt_write_is_retried(board) -> None:
    fake, t = board()
    fake.corrupt_writes = 1
    data = blob(9000, seed=3)
    t.put(data, "/sd/c.bin")
    assert (fake.root / "sd" / "c.bin").read_bytes() == data
    assert sum("_hil_recv(" in e for e in fake.execs) == 2


def test_always_corrupt_never_leaves_the_final_name(board, tmp_path: Path) -> None:
    fake, t = board()
    fake.corrupt_writes = 100
    with pytest.raises(TransferError, match=r"put /sd/d.bin on socket://.*: no verified copy after 3 tries"):
        t.put(blob(3000), "/sd/d.bin")
    assert not (fake.root / "sd" / "d.bin").exists()
    assert not (fake.root / "sd" / "d.bin.part").exists()


def test_lost_byte_unsticks_the_receiver_and_retries(board, tmp_path: Path) -> None:
    fake, t = board()
    fake.drop_stdin = {700}
    t.ack_grace = 0.3
    data = blob(4000, seed=4)
    t.put(data, "/sd/e.bin")
    assert (fake.root / "sd" / "e.bin").read_bytes() == data
    log = (tmp_path / "serial.log").read_text()
    assert "receiver stalled; feeding up to" in log


def test_missing_directory_is_a_device_error(board) -> None:
    from hil.errors import ReplError
    fake, t = board()
    with pytest.raises(ReplError) as info:
        t.put(b"x", "/sd/nodir/x.bin")
    assert info.value.exc_type in ("FileNotFoundError", "OSError")


def test_remote_paths_are_checked() -> None:
    for bad in ("/tmp/x", "sd/x", "/sd/", "/sd/../etc/passwd"):
        with pytest.raises(TransferError, match="must name a file under /sd/ or /flash/"):
            check_remote(bad)


def test_refused_baud_switch_continues_slowly(board, tmp_path: Path) -> None:
    fake, t = board()            # the fake has no machine.UART
    t.fast_baud = 921_600
    t.fast_threshold = 1000
    data = blob(3000, seed=5)
    t.put(data, "/sd/f.bin")
    assert (fake.root / "sd" / "f.bin").read_bytes() == data
    assert t.last_baud == 115_200 and t.link.baud == 115_200
    assert "baud switch refused by the board" in (tmp_path / "serial.log").read_text()
