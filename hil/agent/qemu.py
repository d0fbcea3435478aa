"""The QEMU board: ``qemu-system-riscv64 -M virt`` running the reference firmware, as a child
process this module starts, resets and stops by its own pid.

The console is QEMU's first UART on a TCP socket on 127.0.0.1 (``socket://127.0.0.1:PORT`` for
pyserial / ``hil.link``); control is QMP on a unix socket in a private 0700 directory. The guest RAM
is a file in the state directory (``ram.img``, mapped shared), so the firmware's "SPI flash" and
"SD card" windows survive resets and restarts like the real chips; ``preload_flash`` writes into
that file what kflash would write. A reset is QMP ``system_reset``; when QMP does not answer or the
process is gone, the emulator is killed and started again, so a reset always brings the board back.

Memory windows (agent/reference/board.h): flash at 0x81000000 (16 MiB), the file store at
0x82000000 (32 MiB), in a 128 MiB guest RAM at 0x80000000.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Callable

from hil.errors import HilError, InfrastructureError

QEMU = "qemu-system-riscv64"
APT_HINT = "apt-get install -y qemu-system-misc"
RAM_MIB = 128
RAM_BASE = 0x8000_0000
FLASH_ADDR = 0x8100_0000
FLASH_SIZE = 16 * 1024 * 1024
STORE_ADDR = 0x8200_0000
STORE_SIZE = 32 * 1024 * 1024
START_TIMEOUT_S = 10.0
QMP_TIMEOUT_S = 3.0
STOP_TIMEOUT_S = 5.0

_LIVE: "weakref.WeakSet[QemuBoard]" = weakref.WeakSet()


def _die_with_parent() -> None:   # pragma: no cover - runs in the child between fork and exec
    """Linux: the emulator gets SIGTERM when the process that started it dies, even by SIGKILL
    (atexit below covers normal exits only)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: atexit and the board's close still stop it
        pass


def kflash_wrap(image: bytes) -> bytes:
    """A firmware image as kflash writes it at flash 0: flag byte (0: not encrypted), length
    (u32 LE), the image, SHA-256 of all that."""
    head = b"\x00" + len(image).to_bytes(4, "little") + image
    return head + hashlib.sha256(head).digest()


class QemuError(InfrastructureError):
    """The emulator could not be started, reached, reset or stopped."""


class QmpError(QemuError):
    """QMP did not answer, or answered an error."""


class Qmp:
    """A QMP connection (JSON lines over a unix socket), every read bounded by a timeout."""

    def __init__(self, path: Path, timeout: float = QMP_TIMEOUT_S) -> None:
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self._buf = b""
        try:
            self.sock.connect(str(path))
            self._read()                                # the greeting
            self.command("qmp_capabilities")
        except (OSError, QmpError) as exc:
            self.close()
            raise QmpError(f"QMP {path}: {exc}") from None

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buf:
            if time.monotonic() > deadline:
                raise QmpError(f"QMP {self.path}: no answer within {self.timeout:g} s")
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                raise QmpError(f"QMP {self.path}: {exc}") from None
            if not data:
                raise QmpError(f"QMP {self.path}: connection closed")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def command(self, name: str, **args: Any) -> Any:
        msg = {"execute": name, **({"arguments": args} if args else {})}
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as exc:
            raise QmpError(f"QMP {self.path}: {name}: {exc}") from None
        while True:
            reply = self._read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QmpError(f"QMP {name}: {reply['error'].get('desc', reply['error'])}")
            # an event (RESET, STOP, ...): not the answer

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class QemuBoard:
    """One emulated board. ``state`` holds ram.img (flash and SD card) and qemu.log."""

    def __init__(self, elf: Path, state: Path, binary: str = QEMU, note: Callable[[str], None] | None = None,
                 name: str = "qemu", flash_image: Path | None = None) -> None:
        self.elf = Path(elf)
        self.flash_image = Path(flash_image) if flash_image is not None else None
        self.state = Path(state)
        self.binary = binary
        self.note = note or (lambda _t: None)
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.qmp: Qmp | None = None
        self.starts = 0
        self.resets = 0
        self._ctl_dir: Path | None = None
        _LIVE.add(self)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def ram_image(self) -> Path:
        return self.state / "ram.img"

    @property
    def log_path(self) -> Path:
        return self.state / "qemu.log"

    @property
    def url(self) -> str:
        if not self.running:
            raise QemuError(f"{self.name}: the emulator is not running")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- the RAM file: flash and file store ---------------------------------------------------
    def _ensure_ram(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        size = RAM_MIB * 1024 * 1024
        if not self.ram_image.exists() or self.ram_image.stat().st_size != size:
            with open(self.ram_image, "wb") as f:
                f.truncate(size)            # sparse: only what the guest touches takes disk
                # a new board: erased flash, with the firmware where kflash puts it
                f.seek(FLASH_ADDR - RAM_BASE)
                f.write(b"\xff" * FLASH_SIZE)
                if self.flash_image is not None:
                    f.seek(FLASH_ADDR - RAM_BASE)
                    f.write(kflash_wrap(self.flash_image.read_bytes()))

    def _write_ram(self, addr: int, data: bytes) -> None:
        self._ensure_ram()
        with open(self.ram_image, "r+b") as f:
            f.seek(addr - RAM_BASE)
            f.write(data)

    def _read_ram(self, addr: int, n: int) -> bytes:
        self._ensure_ram()
        with open(self.ram_image, "rb") as f:
            f.seek(addr - RAM_BASE)
            return f.read(n)

    def preload_flash(self, data: bytes, offset: int = 0) -> None:
        """Write bytes into the board's flash, as kflash would (also while it runs: the file is
        the guest's memory)."""
        if offset < 0 or offset + len(data) > FLASH_SIZE:
            raise HilError(f"{self.name}: flash write {offset:#x}+{len(data)} outside the 16 MiB flash")
        self._write_ram(FLASH_ADDR + offset, data)

    def read_flash(self, offset: int, n: int) -> bytes:
        return self._read_ram(FLASH_ADDR + offset, n)

    def erase_flash(self) -> None:
        """An erased NOR flash reads 0xFF."""
        self._write_ram(FLASH_ADDR, b"\xff" * FLASH_SIZE)

    def format_sd(self) -> None:
        """Blank the file store's directory: the firmware formats it at its next boot."""
        self._write_ram(STORE_ADDR, bytes(8192))

    # -- the process ---------------------------------------------------------------------------
    def _argv(self, port: int, qmp: Path) -> list[str]:
        mib = f"{RAM_MIB}M"
        return [self.binary, "-M", "virt,memory-backend=ram0",
                "-object", f"memory-backend-file,id=ram0,size={mib},mem-path={self.ram_image},share=on",
                "-m", mib, "-smp", "1", "-nodefaults", "-display", "none", "-bios", "none",
                "-kernel", str(self.elf),
                "-chardev", f"socket,id=console,host=127.0.0.1,port={port},server=on,wait=off,nodelay=on",
                "-serial", "chardev:console",
                "-qmp", f"unix:{qmp},server=on,wait=off"]

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Start the emulator (the firmware boots at once); returns the console URL."""
        if self.running:
            return self.url
        if shutil.which(self.binary) is None and not Path(self.binary).is_file():
            raise QemuError(f"{self.name}: {self.binary} not found ({APT_HINT})")
        if not self.elf.is_file():
            raise QemuError(f"{self.name}: firmware {self.elf} does not exist")
        self._ensure_ram()
        self._ctl_dir = Path(tempfile.mkdtemp(prefix="hil-qemu-"))   # 0700, short unix path
        qmp_path = self._ctl_dir / "qmp.sock"
        # the same console port as before when it is free, so a power cycle keeps the URL
        for port in ([self.port, 0] if self.port else [0]):
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    self._argv(port, qmp_path), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            finally:
                log.close()
            try:
                self._connect(qmp_path, timeout)
                break
            except QemuError:
                self._kill()
                if port == 0:
                    raise
        self.starts += 1
        self.note(f"{self.name}: emulator started (pid {self.proc.pid}), console {self.url}")
        return self.url

    def _connect(self, qmp_path: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not qmp_path.exists():
            if self.proc is None or self.proc.poll() is not None:
                raise QemuError(f"{self.name}: {self.binary} exited at start: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise QemuError(f"{self.name}: no QMP socket within {timeout:g} s: {self._log_tail()}")
            time.sleep(0.02)
        self.qmp = Qmp(qmp_path)
        for dev in self.qmp.command("query-chardev"):
            if dev.get("label") == "console":
                m = re.search(r"tcp:127\.0\.0\.1:(\d+)", dev.get("filename", ""))
                if m:
                    self.port = int(m.group(1))
                    return
        raise QemuError(f"{self.name}: QMP query-chardev shows no console port")

    def _log_tail(self) -> str:
        try:
            text = self.log_path.read_bytes()[-400:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return " ".join(text.split())[-300:] or "(empty log)"

    def reset(self) -> str:
        """The reset button: QMP system_reset, or a fresh emulator when QMP fails. Console URL."""
        self.resets += 1
        if self.running and self.qmp is not None:
            try:
                self.qmp.command("system_reset")
                status = self.qmp.command("query-status")
                if status.get("status") in ("paused", "prelaunch"):   # was frozen: the reset releases it
                    self.qmp.command("cont")
                    status = self.qmp.command("query-status")
                if status.get("running"):
                    self.note(f"{self.name}: system_reset")
                    return self.url
                self.note(f"{self.name}: after system_reset the VM is {status.get('status')}; restarting")
            except QmpError as exc:
                self.note(f"{self.name}: reset over QMP failed ({exc}); restarting the emulator")
        self.stop(graceful=False)
        return self.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S, graceful: bool = True) -> None:
        """Stop the emulator: QMP quit, then SIGTERM, then SIGKILL, each to our own pid.
        ``graceful=False`` (QMP already failed: the process is wedged) goes straight to SIGKILL."""
        if not graceful:
            self._kill(sigterm=False)
        if self.qmp is not None:
            if self.running:
                try:
                    self.qmp.command("quit")
                except QmpError:
                    pass
            self.qmp.close()
            self.qmp = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
            self.note(f"{self.name}: emulator stopped (pid {self.proc.pid}, status {self.proc.returncode})")
        self.proc = None
        if self._ctl_dir is not None:
            shutil.rmtree(self._ctl_dir, ignore_errors=True)
            self._ctl_dir = None

    def _kill(self, sigterm: bool = True) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        steps = ((signal.SIGTERM, 2.0),) if sigterm else ()
        for sig, wait in steps + ((signal.SIGKILL, 5.0),):
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def hang(self) -> None:
        """Freeze the CPU (QMP stop): the firmware stops answering, as a hung board does."""
        if self.qmp is None:
            raise QemuError(f"{self.name}: not running")
        self.qmp.command("stop")

    def __enter__(self) -> "QemuBoard":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for board in list(_LIVE):
        try:
            board.stop(timeout=1.0)
        except Exception:   # noqa: BLE001 - interpreter exit: best effort, never raise
            pass
