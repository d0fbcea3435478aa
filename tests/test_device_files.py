"""The file cache on the board (hil.device.files), against a device kept in a dict: each route, and
what a reboot makes it check again."""
from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from hil.board.state import SOFT_RESET, BoardEvents, RebootCause
from hil.device.api import Device, Memory, Unsupported
from hil.device.files import FileCache, patches
from hil.errors import TransferError
from hil.kmodel.fixtures import Recipe
from hil.steps import Steps


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DictDevice(Device):
    """A board whose storage is a dict; counts what the cache asked of it."""

    def __init__(self, generates: bool = True, derives: bool = True) -> None:
        self.lifecycle = SimpleNamespace(steps=Steps(), events=BoardEvents(), firmware_version="v0")
        self.lifecycle.subscribe = self.lifecycle.events.subscribe
        self.store: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.generates, self.derives = generates, derives
        self.corrupt = False

    def put(self, local, remote, progress=None) -> str:
        self.calls.append(f"put {remote}")
        self.store[remote] = bytes(local) + (b"!" if self.corrupt else b"")
        return sha(self.store[remote])

    def sha256(self, remote: str) -> str:
        self.calls.append(f"sha256 {remote}")
        return sha(self.store[remote])

    def exists(self, path: str) -> bool:
        return path in self.store

    def mkdir(self, path: str, exist_ok: bool = True) -> None:
        self.calls.append(f"mkdir {path}")

    def can_generate(self, recipe) -> bool:
        return self.generates and recipe.writer == "v3"

    def generate(self, path: str, recipe) -> str:
        self.calls.append(f"generate {path}")
        self.store[path] = bytes(recipe.size)
        return sha(self.store[path])

    def derive(self, base, size, runs, sha256, path) -> bool:
        if not self.derives:
            raise Unsupported("no")
        data = bytearray(self.store[base][:size])
        for offset, hexed in runs:
            data[offset:offset + len(hexed) // 2] = bytes.fromhex(hexed)
        self.calls.append(f"derive {path} from {base}")
        if sha(bytes(data)) == sha256:
            self.store[path] = bytes(data)
            return True
        return False

    memory = gc_heap_size = set_gc_heap_size = get = size = remove = listdir = sd_present = \
        lambda *a, **k: Memory(0, 0)


@pytest.fixture
def device() -> DictDevice:
    return DictDevice()


def test_a_file_is_uploaded_once_then_known(device) -> None:
    files = FileCache(device)
    data = bytes(range(256)) * 8
    assert files.ensure("/sd/hil/a.bin", sha(data), data=data) == "uploaded"
    assert device.calls == ["mkdir /sd/hil", "put /sd/hil/a.bin"]
    assert files.ensure("/sd/hil/a.bin", sha(data), data=data) == "known"
    assert device.calls[-1] == "put /sd/hil/a.bin"          # nothing asked of the board


def test_a_new_session_finds_it_present(device) -> None:
    data = b"model" * 100
    FileCache(device).ensure("/sd/hil/a.bin", sha(data), data=data)
    again = FileCache(device)                                # tomorrow night
    assert again.ensure("/sd/hil/a.bin", sha(data), data=data) == "present"
    assert device.calls.count("put /sd/hil/a.bin") == 1


def test_a_near_copy_is_derived_on_the_board(device) -> None:
    files = FileCache(device)
    base = bytes(range(256)) * 16
    files.ensure("/sd/hil/base.kmodel", sha(base), data=base)
    broken = bytearray(base[:3000])
    broken[8:12] = b"\xff\xff\xff\xff"
    assert files.ensure("/sd/hil/broken.kmodel", sha(bytes(broken)), data=bytes(broken)) == "derived on the board"
    assert device.store["/sd/hil/broken.kmodel"] == bytes(broken)
    assert "put /sd/hil/broken.kmodel" not in device.calls
    assert patches(base, bytes(broken)) == [(8, "ffffffff")]


def test_without_derive_it_uploads(device) -> None:
    device.derives = False
    files = FileCache(device)
    base = bytes(1000)
    files.ensure("/sd/hil/base.bin", sha(base), data=base)
    assert files.ensure("/sd/hil/near.bin", sha(b"\x01" + base[1:]), data=b"\x01" + base[1:]) == "uploaded"


def test_a_recipe_is_written_on_the_board(device) -> None:
    files = FileCache(device)
    recipe = Recipe("v3", size=5000)
    assert files.ensure("/sd/hil/big.kmodel", sha(bytes(5000)), recipe=recipe) == "written on the board"
    assert "generate /sd/hil/big.kmodel" in device.calls


def test_a_reboot_that_may_touch_storage_makes_it_look_again(device) -> None:
    files = FileCache(device)
    data = b"x" * 64
    files.ensure("/flash/hil_a", sha(data), data=data)
    device.lifecycle.events.rebooted(SOFT_RESET)             # storage untouched
    assert files.ensure("/flash/hil_a", sha(data), data=data) == "known"
    device.lifecycle.events.rebooted(RebootCause("brownout"))  # anything may have happened
    assert files.ensure("/flash/hil_a", sha(data), data=data) == "present"


def test_a_copy_that_does_not_verify_is_an_error(device) -> None:
    device.corrupt = True
    files = FileCache(device)
    with pytest.raises(TransferError, match=r"/sd/x.bin: uploaded, the board holds sha256 .*, expected "):
        files.ensure("/sd/x.bin", sha(b"abc"), data=b"abc")
    assert "/sd/x.bin" not in files.files


def test_every_route_is_a_step(device) -> None:
    sink = device.lifecycle.steps.open_sink()
    files = FileCache(device)
    files.ensure("/sd/a", sha(b"a"), data=b"a")
    files.ensure("/sd/a", sha(b"a"), data=b"a")
    assert [(s["name"], s["args"]["route"]) for s in sink.records] == [("file", "uploaded"), ("file", "known")]
