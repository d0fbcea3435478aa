"""The reference C-SDK firmware under QEMU, end to end: the build, booting, every protocol command
over the emulated UART, files and flash that survive resets, and resets and power that always
bring the board back. (Models: test_agent_kpu.py; the line-protocol fuzz: test_agent_fuzz.py.)"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent_qemu import AgentBoard, firmware, need_tools
from hil.agent import build as agent_build
from hil.agent.client import AgentClient
from hil.agent.errors import AgentCommandError, AgentFileNotFound, TransferError
from hil.agent.qemu import FLASH_SIZE, QemuBoard, QemuError
from hil.drivers.power.qemu import QemuPower
from hil.errors import PowerError, RigConfigError
from hil.firmware import load_profile
from hil.rig import load_rig

ROOT = Path(__file__).resolve().parent.parent
SRAM = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def qboard(tmp_path_factory):
    need_tools()
    board = AgentBoard(tmp_path_factory.mktemp("qemu-agent"), tmp_path_factory.mktemp("log") / "serial.log")
    board.start()
    yield board
    board.close()


@pytest.fixture
def agent(qboard) -> AgentClient:
    c = qboard.ensure()
    c.deinit_all()
    return c


# -- the build ---------------------------------------------------------------------------------------
def test_build_is_cached_and_warnings_are_errors(tmp_path: Path) -> None:
    need_tools()
    first = agent_build.build_reference(cache=tmp_path / "cache")
    again = agent_build.build_reference(cache=tmp_path / "cache")
    assert first.built and not again.built and again.elf == first.elf
    assert first.elf.read_bytes()[:4] == b"\x7fELF" and first.bin.stat().st_size > 1000
    assert again.build_id == first.build_id == f"ref-{first.key[:12]}"
    # one unused variable in a copy of the sources: -Werror stops the build, naming the file
    src = tmp_path / "agent"
    shutil.copytree(agent_build.AGENT_DIR, src)
    main = src / "reference" / "main.c"
    main.write_text(main.read_text().replace("int main(void)\n{\n", "int main(void)\n{\n    int unused;\n"))
    with pytest.raises(agent_build.AgentBuildError, match=r"compile failed: .*main\.c.*unused"):
        agent_build.build_reference(cache=tmp_path / "cache", agent_dir=src)


def test_build_without_the_toolchain_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(agent_build.AgentBuildError, match="apt-get install -y gcc-riscv64-unknown-elf"):
        agent_build.build_reference(cache=tmp_path, cc="/nonexistent/riscv64-unknown-elf-gcc")


# -- boot and identity --------------------------------------------------------------------------------
def test_boot_line_and_hello(qboard, agent) -> None:
    boots = agent.boots
    qboard.qemu.reset()
    deadline = time.monotonic() + 10
    while agent.boots == boots and time.monotonic() < deadline:
        agent.drain_events(0.1)
    assert agent.boots == boots + 1, "no BOOT line after the reset"
    boot = agent.last_boot
    assert boot.fields["build"] == firmware().build_id and boot.fields["ready"] == "1"
    h = agent.hello()
    assert (h.agent, h.proto, h.board, h.build) == ("0.1.0", 1, "qemu-virt", firmware().build_id)
    assert h.kmodel_versions == (3, 4) and h.max_models == 8 and h.files
    assert h.flash_size == FLASH_SIZE and h.line_max == 1024 and h.chunk_max == 512
    # the heap is what the image and its stacks leave of the K210's 6 MiB general SRAM
    assert SRAM - 256 * 1024 < h.heap_total < SRAM and h.heap_free == h.heap_total


def test_memory_figures(agent) -> None:
    m = agent.memory()
    assert m.heap_free == m.heap_total and (m.models, m.model_bytes) == (0, 0)


# -- files ------------------------------------------------------------------------------------------------
def test_file_put_stat_get_list_remove(agent) -> None:
    data = bytes(range(256)) * 9 + b"tail"                 # every byte value, not a chunk multiple
    sha = agent.put("/sd/hil/every_byte.bin", data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert agent.stat("/sd/hil/every_byte.bin").size == len(data)
    assert agent.get("/sd/hil/every_byte.bin") == data
    agent.put("/sd/hil/every_byte.bin", b"shorter")         # replaced whole
    assert agent.get("/sd/hil/every_byte.bin") == b"shorter"
    agent.put("/sd/empty", b"")
    assert agent.get("/sd/empty") == b""
    listed = agent.listdir()
    assert listed["/sd/hil/every_byte.bin"] == 7 and listed["/sd/empty"] == 0
    agent.remove("/sd/empty")
    assert not agent.exists("/sd/empty")
    with pytest.raises(AgentFileNotFound, match="STAT /sd/empty: ERR 1012 NOT_FOUND: no such file"):
        agent.stat("/sd/empty")
    agent.remove("/sd/empty", missing_ok=True)


def test_truncate_grows_with_zeros_and_cuts(agent) -> None:
    agent.put("/sd/grow", b"abc")
    agent.truncate("/sd/grow", 10)
    assert agent.get("/sd/grow") == b"abc" + bytes(7)
    agent.truncate("/sd/grow", 2)
    assert agent.get("/sd/grow") == b"ab"
    with pytest.raises(AgentFileNotFound, match="TRUNC /sd/nothing 5: ERR 1012 NOT_FOUND"):
        agent.truncate("/sd/nothing", 5)
    # a TRUNC in the middle of a PUT ends that PUT (the file layer writes one file at a time)
    assert agent.exchange("PUT", "/sd/cut", 3, hashlib.sha256(b"xyz").hexdigest()).ok
    agent.truncate("/sd/grow", 4)
    assert agent.exchange("DATA", 0, "eHl6").code == 1006
    assert not agent.exists("/sd/cut")


@pytest.mark.parametrize("path, text", [
    ("/sd/../etc", "path must be /name"), ("sd/x", "path must be /name"), ("/sd/x/", "path must be /name"),
    ("/sd/" + "a" * 260, "path must be /name"), ("/flash/x", "path not on this file system"),
])
def test_bad_paths(agent, path, text) -> None:
    with pytest.raises(AgentCommandError, match=f"ERR 1011 BAD_PATH: {text}"):
        agent.put(path, b"x")


def test_flash_write_sha_read(agent) -> None:
    data = os.urandom(3000)
    agent.flash_write(0x700000, data)
    assert agent.flash_sha256(0x700000, len(data)) == hashlib.sha256(data).hexdigest()
    assert agent.flash_read(0x700000 + 1000, 1500) == data[1000:2500]
    with pytest.raises(AgentCommandError, match="ERR 1014 RANGE"):
        agent.flash_write(FLASH_SIZE - 10, b"x" * 11)
    with pytest.raises(AgentCommandError, match="ERR 1014 RANGE"):
        agent.flash_sha256(FLASH_SIZE + 1, 1)


def test_flash_holds_the_firmware_image_like_kflash_wrote_it(agent) -> None:
    image = firmware().bin.read_bytes()
    head = agent.flash_read(0, 5)
    assert head == b"\x00" + len(image).to_bytes(4, "little")
    assert agent.flash_sha256(5, len(image)) == hashlib.sha256(image).hexdigest()


def test_protocol_errors_of_transfers(agent) -> None:
    ex = agent.exchange
    assert ex("DATA", 0, "AAAA").status == "ERR 1006 NO_TRANSFER: no PUT or FPUT in progress"
    sha = hashlib.sha256(b"abcdef").hexdigest()
    assert ex("PUT", "/sd/t", 6, sha).ok
    assert ex("DATA", 3, "YWJj").status == "ERR 1007 OFFSET next=0: data out of sequence"
    assert ex("DATA", 0, "YW=j").status == "ERR 1009 BASE64: payload is not base64 of 1..512 bytes"
    assert ex("DATA", 0, "YWJj").fields["next"] == "3"
    assert ex("DATA", 0, "YWJj").fields["next"] == "3"          # the same chunk again: not written twice
    assert ex("END").status == "ERR 1007 OFFSET next=3: transfer incomplete"
    assert ex("DATA", 3, "ZGVmZw==").status == "ERR 1007 OFFSET next=3: data past the announced size"
    assert ex("DATA", 3, "ZGVm").ok
    assert ex("END").fields["sha256"] == sha
    assert agent.get("/sd/t") == b"abcdef"
    # a wrong sha256 commits nothing
    assert ex("PUT", "/sd/t", 3, "0" * 64).ok and ex("DATA", 0, "eHl6").ok
    end = ex("END")
    assert end.code == 1008 and end.fields["sha256"] == hashlib.sha256(b"xyz").hexdigest()
    assert agent.get("/sd/t") == b"abcdef"
    assert ex("PUT", "/sd/t", 3, "0" * 64).ok and ex("ABORT").ok
    assert ex("END").code == 1006


def test_argument_and_verb_errors(agent) -> None:
    ex = agent.exchange
    assert ex("LOAD", "FILE").status == "ERR 1005 ARGS: usage: LOAD FILE <path> | LOAD FLASH <offset> [<size>]"
    assert ex("LOAD", "SD", "/sd/x").code == 1005
    assert ex("READ", "/sd/t", "x", "1").status == "ERR 1005 ARGS: usage: READ <path> <offset> <count>"
    assert ex("PUT", "/sd/t", "1", "abc").code == 1005
    assert ex("FPUT", "-1", "1", "0" * 64).code == 1005
    assert ex("hello").status.startswith("ERR 1004 UNKNOWN_VERB: unknown verb: HELLO MEM LOAD")
    assert ex("LS", "99999").fields == {"index": "99999", "end": "1"}


def test_sha_mismatch_raises_transfer_error(agent, monkeypatch) -> None:
    real = hashlib.sha256      # the client announces a sha256 its data does not have
    monkeypatch.setattr("hil.agent.client.hashlib", SimpleNamespace(sha256=lambda d=b"": real(d + b"!")))
    with pytest.raises(TransferError, match="SHA_MISMATCH"):
        agent.put("/sd/wrong", b"data")
    monkeypatch.undo()
    assert not agent.exists("/sd/wrong")


# -- reboot, reset, power ------------------------------------------------------------------------------
def test_reboot_command(agent) -> None:
    agent.put("/sd/keep", b"survives")
    boot = agent.reboot()
    assert boot.fields["ready"] == "1"
    assert agent.hello().heap_free == agent.memory().heap_total
    assert agent.get("/sd/keep") == b"survives"


def test_files_and_flash_survive_reset_and_power_cycle(qboard, agent) -> None:
    agent.put("/sd/persist.bin", b"card contents")
    agent.flash_write(0x600000, b"flash contents")
    qboard.qemu.reset()
    c = qboard.connect()
    assert c.get("/sd/persist.bin") == b"card contents"
    url = qboard.qemu.url
    qboard.qemu.stop()
    qboard.qemu.start()
    assert qboard.qemu.url == url, "a power cycle keeps the console port while it is free"
    c = qboard.connect()
    assert c.get("/sd/persist.bin") == b"card contents"
    assert c.flash_read(0x600000, 14) == b"flash contents"


def _freeze_cpu(qboard) -> None:
    qboard.qemu.hang()


def _stop_process(qboard) -> None:
    os.kill(qboard.qemu.proc.pid, signal.SIGSTOP)     # QMP cannot answer either


def _kill_process(qboard) -> None:
    os.kill(qboard.qemu.proc.pid, signal.SIGKILL)
    qboard.qemu.proc.wait(5)


def _mid_transfer(qboard) -> None:
    c = qboard.client
    assert c.exchange("PUT", "/sd/half", 100000, "0" * 64).ok
    assert c.exchange("DATA", 0, "QUFBQQ==").ok


def _half_line(qboard) -> None:
    qboard.link.write(b">9 LOAD FILE /sd/no-newline")


@pytest.mark.parametrize("break_it", [None, _mid_transfer, _half_line, _freeze_cpu, _stop_process, _kill_process],
                         ids=["idle", "mid-transfer", "half-line", "cpu-frozen", "process-stopped", "process-killed"])
def test_reset_always_brings_the_board_back(qboard, agent, break_it) -> None:
    pid = qboard.qemu.proc.pid
    if break_it is not None:
        break_it(qboard)
    qboard.qemu.reset()
    c = qboard.connect()
    assert c.hello().heap_free == c.memory().heap_total
    assert not c.exists("/sd/half"), "a transfer cut by a reset must not leave a file"
    restarted = qboard.qemu.proc.pid != pid
    assert restarted == (break_it in (_stop_process, _kill_process))
    if restarted:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_qemu_power_driver(tmp_path: Path) -> None:
    need_tools()
    fw = firmware()
    power = QemuPower.for_firmware(fw.elf, tmp_path / "state", rig_name="qemu-test")
    assert (power.can_reset, power.can_power, power.drops_port) == (True, True, True)
    try:
        power.on()
        url = power.url
        pids = [power.board.proc.pid]
        power.cycle()
        pids.append(power.board.proc.pid)
        power.reset()
        assert power.url == url and pids[0] != pids[1] == power.board.proc.pid
        from hil.link import Link
        link = Link(power.url)
        assert AgentClient(link).wait_ready(10).build == fw.build_id
        link.close()
        power.off()
        assert not power.board.running
        with pytest.raises(QemuError, match="not running"):
            power.url
    finally:
        power.close()
    broken = QemuPower(QemuBoard(fw.elf, tmp_path / "s2", binary="/nonexistent/qemu"), "qemu-test")
    assert broken.console_url is None
    with pytest.raises(PowerError, match=r"rig qemu-test: qemu power on: .*qemu not found \(apt-get install -y qemu-system-misc\)"):
        broken.on()


# -- rig file and profile ------------------------------------------------------------------------------
def test_qemu_rig_and_csdk_profile() -> None:
    rig = load_rig("qemu-csdk", ROOT / "rigs")
    assert rig.emulator is not None and rig.emulator.kind == "qemu" and rig.emulator.elf is None
    assert rig.serial.port == "qemu" and rig.power.driver == "qemu"
    p = rig.profile
    assert p.family == "csdk" and p.memory.gc_heap_default is None and p.accepts(3) and p.accepts(4)
    assert p.errors.code_of(p.errors.no_mem) == 2006 and p.errors.code_of(p.errors.missing_file) == 2010
    assert load_profile("maixpy-v0.6.2-full").errors.code_of("[MAIXPY]kpu: load error:2006, x") == 2006


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('driver = "qemu"', 'driver = "none"'), "'none' cannot power an emulated board"),
    (lambda t: t.replace('port = "qemu"', 'port = "/dev/ttyUSB0"'), 'a \\[qemu\\] rig takes port = "qemu"'),
    (lambda t: t.replace('firmware = "reference"', 'firmware = "mine"'), "qemu.firmware: 'mine': not one of: reference"),
    (lambda t: t + 'elf = "nope.elf"\n', r"qemu.elf: 'nope.elf': no such file"),
    (lambda t: t + "ram = 64\n", r"unknown key.*ram|ram.*allowed"),
    (lambda t: t + '[sim]\nbuild = "maixpy-v0.6.2-full"\n', r"\[qemu\] cannot be combined with \[sim\]"),
    (lambda t: t + 'binary = ""\n', r"qemu.binary: '': must not be empty"),
    (lambda t: t.split("[qemu]")[0].replace('port = "qemu"', 'port = "/dev/ttyUSB0"'),
     r"power.driver: 'qemu' powers an emulated board: add a \[qemu\] table"),
])
def test_qemu_rig_errors_are_one_line(tmp_path: Path, change, message) -> None:
    text = change((ROOT / "rigs" / "qemu-csdk.toml").read_text())
    (tmp_path / "firmware").mkdir()
    shutil.copy(ROOT / "rigs" / "firmware" / "csdk-agent-reference.toml", tmp_path / "firmware")
    shutil.copy(ROOT / "rigs" / "firmware" / "maixpy-v0.6.2-full.toml", tmp_path / "firmware")
    (tmp_path / "qemu-csdk.toml").write_text(text)
    with pytest.raises(RigConfigError, match=message) as info:
        load_rig("qemu-csdk", tmp_path)
    assert "\n" not in str(info.value)


def test_qemu_port_needs_a_qemu_table(tmp_path: Path) -> None:
    text = (ROOT / "rigs" / "maixbit.toml").read_text().replace('port = "/dev/ttyUSB0"', 'port = "qemu"')
    (tmp_path / "maixbit.toml").write_text(text)
    with pytest.raises(RigConfigError, match=r'serial.port: "qemu" is the console of an emulated board'):
        load_rig(tmp_path / "maixbit.toml")
