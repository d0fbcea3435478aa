"""Build the reference firmware (agent/ + agent/reference/) for QEMU, into a cache reused while the
sources, flags and compiler stay the same.

Toolchain: Debian's ``gcc-riscv64-unknown-elf`` with ``picolibc-riscv64-unknown-elf``, for the
K210's ISA and ABI (``-march=rv64imafc -mabi=lp64f``), warnings as errors. Output in
``.hil/agent-build/<key>/`` of the checkout (installed: ``~/.cache/k210-hil/agent-build/<key>/``): ``firmware.elf`` (what QEMU runs), ``firmware.bin`` (the image as
kflash would write it at flash 0) and ``build.json``. A build goes to a temporary directory and is
renamed into place, so parallel test workers never see half a build.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hil.errors import HilError
from hil.resources import checkout, shipped, user_cache

AGENT_DIR = shipped("agent")        # the checkout's agent/, or its copy inside an installed wheel
# beside the checkout; installed, in the user's cache (site-packages is no place to build in)
DEFAULT_CACHE = checkout() / ".hil" / "agent-build" if checkout() else user_cache("agent-build")
CC = "riscv64-unknown-elf-gcc"
OBJCOPY = "riscv64-unknown-elf-objcopy"
APT_HINT = "apt-get install -y gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"
ARCH_FLAGS = ("-march=rv64imafc", "-mabi=lp64f", "-mcmodel=medany")
CFLAGS = ("-std=c11", "-Os", "-g", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes",
          "-Wmissing-prototypes", "-ffunction-sections", "-fdata-sections")
LDFLAGS = ("--specs=picolibc.specs", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments")
BUILD_TIMEOUT_S = 300.0


class AgentBuildError(HilError):
    """The reference firmware could not be built (toolchain missing, compiler error)."""


@dataclass(frozen=True)
class Firmware:
    elf: Path
    bin: Path
    build_id: str           # what the firmware reports in HELLO/BOOT ("ref-<key>")
    key: str
    built: bool             # False when the cache was reused
    seconds: float          # build time (0 when reused)


def sources(agent_dir: Path = AGENT_DIR) -> list[Path]:
    """Every file the firmware is built from, in a stable order."""
    found = [p for sub in ("include", "src", "reference") for p in sorted((agent_dir / sub).glob("*"))
             if p.suffix in (".c", ".h", ".ld")]
    if not any(p.suffix == ".c" for p in found):
        raise AgentBuildError(f"no agent sources under {agent_dir} (expected include/, src/, reference/)")
    return found


def _tool_version(cc: str) -> str:
    try:
        done = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise AgentBuildError(f"{cc} not found: install the RISC-V toolchain ({APT_HINT})") from None
    return done.stdout.splitlines()[0] if done.stdout else cc


def cache_key(srcs: list[Path], agent_dir: Path, cc: str = CC) -> str:
    h = hashlib.sha256()
    h.update(_tool_version(cc).encode())
    h.update(" ".join(ARCH_FLAGS + CFLAGS + LDFLAGS).encode())
    for p in srcs:
        h.update(str(p.relative_to(agent_dir)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_reference(cache: Path | None = None, agent_dir: Path = AGENT_DIR, force: bool = False,
                    cc: str = CC) -> Firmware:
    """The reference firmware, built now or taken from the cache."""
    cache = Path(cache) if cache is not None else Path(os.environ.get("HIL_AGENT_BUILD", DEFAULT_CACHE))
    srcs = sources(agent_dir)
    key = cache_key(srcs, agent_dir, cc)
    out = cache / key
    build_id = f"ref-{key[:12]}"
    if not force and (out / "build.json").is_file() and (out / "firmware.elf").is_file():
        return Firmware(out / "firmware.elf", out / "firmware.bin", build_id, key, False, 0.0)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
    try:
        start = time.monotonic()
        elf, bin_ = tmp / "firmware.elf", tmp / "firmware.bin"
        argv = [cc, *ARCH_FLAGS, *CFLAGS, *LDFLAGS, "-T", str(agent_dir / "reference" / "k210-virt.ld"),
                f"-I{agent_dir / 'include'}", f"-I{agent_dir / 'src'}", f'-DHIL_BUILD_ID="{build_id}"',
                *(str(p) for p in srcs if p.suffix == ".c"), "-o", str(elf)]
        _run(argv, "compile")
        _run([cc.replace("gcc", "objcopy") if cc.endswith("gcc") else OBJCOPY, "-O", "binary",
              str(elf), str(bin_)], "objcopy")
        seconds = time.monotonic() - start
        (tmp / "build.json").write_text(json.dumps({
            "key": key, "build_id": build_id, "seconds": round(seconds, 3),
            "argv": argv, "sources": [str(p.relative_to(agent_dir)) for p in srcs]}, indent=1))
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out / "build.json").is_file():   # not another worker's finished build
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Firmware(out / "firmware.elf", out / "firmware.bin", build_id, key, True, seconds)


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except FileNotFoundError:
        raise AgentBuildError(f"reference firmware {what}: {argv[0]} not found ({APT_HINT})") from None
    except subprocess.TimeoutExpired:
        raise AgentBuildError(f"reference firmware {what}: did not finish within {BUILD_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        text = (done.stderr or done.stdout).strip()
        first = next((ln for ln in text.splitlines() if "error" in ln), text[:300])
        raise AgentBuildError(f"reference firmware {what} failed: {first}")
