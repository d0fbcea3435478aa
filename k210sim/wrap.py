"""Run an unmodified serial client (kflash) against the simulator's pty with working DTR/RTS.

``hil sim wrap --state DIR -- CMD ...`` builds ``k210sim/modemshim.c`` with the system C
compiler on first use, then runs CMD with ``LD_PRELOAD`` set to the shim and
``SIM_MODEM_SOCK=DIR/modem.sock`` (where the simulator listens), so the client's DTR/RTS
changes on the pty reach the board's reset circuit (a pty has no modem lines: TIOCMSET on a pty
fails with ENOTTY, tty_ioctl(4)).

The built library is cached in ``$XDG_CACHE_HOME/k210-hil`` (default ``~/.cache/k210-hil``),
named by the SHA-256 of the source, so an edited source is rebuilt and concurrent builds never
see a half-written file (compile to a temporary name, then rename). If the cache is not
writable, the state directory is used.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from k210sim.errors import SimError
from k210sim.control import connect_path

SOURCE = Path(__file__).with_name("modemshim.c")
COMPILERS = ("cc", "gcc", "clang")
MODEM_SOCK = "modem.sock"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "k210-hil"


def find_compiler() -> str:
    cc = os.environ.get("CC")
    if cc and shutil.which(cc.split()[0]):
        return cc.split()[0]
    for name in COMPILERS:
        if shutil.which(name):
            return name
    raise SimError("cannot build the modem-line shim: no C compiler found (tried $CC, "
                   f"{', '.join(COMPILERS)}); install one, e.g. apt-get install gcc")


def shim_path(state_dir: Path | None = None) -> Path:
    """The built shim library, building it on first use."""
    try:
        source = SOURCE.read_bytes()
    except OSError as exc:
        raise SimError(f"modem-line shim source {SOURCE} missing: {exc.strerror}") from None
    name = f"modemshim-{hashlib.sha256(source).hexdigest()[:16]}.so"
    candidates = [cache_dir()] + ([Path(state_dir)] if state_dir is not None else [])
    for d in candidates:
        if (d / name).exists():
            return d / name
    last_error = ""
    for d in candidates:
        try:
            d.mkdir(parents=True, exist_ok=True)
            return _build(d / name)
        except PermissionError as exc:
            last_error = f"{d}: {exc.strerror}"
    raise SimError(f"cannot build the modem-line shim: no writable cache directory ({last_error})")


def _build(target: Path) -> Path:
    cc = find_compiler()
    fd, tmp = tempfile.mkstemp(prefix=".modemshim.", suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", tmp, str(SOURCE), "-ldl"],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
            raise SimError(f"building the modem-line shim with {cc} failed: {first}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def wrap_env(state_dir: Path | str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a client of the simulator in ``state_dir``: shim preloaded, socket named."""
    state = Path(state_dir).absolute()
    env = dict(os.environ if base is None else base)
    lib = str(shim_path(state))
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = lib + (" " + preload if preload and lib not in preload else "")
    # A unix socket path is limited to 107 bytes; a long state dir is served through a link.
    env["SIM_MODEM_SOCK"] = connect_path(state / MODEM_SOCK)
    return env


def exec_wrapped(state_dir: Path | str, argv: list[str]) -> None:
    """Replace this process with ``argv`` under the shim (returns only by raising)."""
    if not argv:
        raise SimError("hil sim wrap: no command given (usage: hil sim wrap --state DIR -- CMD ...)")
    state = Path(state_dir)
    sock = state / MODEM_SOCK
    if not sock.exists():
        raise SimError(f"{sock}: no simulator is listening (start `hil sim serve --state {state}` first)")
    exe = shutil.which(argv[0])
    if exe is None:
        raise SimError(f"hil sim wrap: command not found: {argv[0]}")
    env = wrap_env(state)
    os.execve(exe, argv, env)
