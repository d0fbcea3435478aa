"""The LD_PRELOAD modem-line shim and its builder (k210sim/modemshim.c, k210sim/wrap.py)."""
from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import textwrap

import pytest

from k210sim.errors import SimError
from k210sim import wrap

CLIENT = textwrap.dedent("""
    import os, pty, serial
    m, s = pty.openpty()
    p = serial.Serial(os.ttyname(s), 115200, timeout=0.1)   # open asserts DTR and RTS
    p.dtr = False
    p.rts = False
    p.rts = True
    print("cts", p.cts)                                    # TIOCMGET answered by the shim
    p.close()                                              # HUPCL: both dropped
""")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "k210-hil"


def test_shim_turns_pty_ioctls_into_datagrams(tmp_path, cache):
    if not any(wrap.shutil.which(c) for c in wrap.COMPILERS):
        pytest.skip("no C compiler")
    sock_path = tmp_path / wrap.MODEM_SOCK
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(sock_path))
    srv.settimeout(2.0)
    try:
        env = wrap.wrap_env(tmp_path)
        assert env["SIM_MODEM_SOCK"] == str(sock_path)
        assert env["LD_PRELOAD"].startswith(str(cache))
        r = subprocess.run([sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        assert "cts False" in r.stdout
        got = []
        srv.settimeout(0.5)
        try:
            while True:
                got.append(srv.recv(64).decode())
        except socket.timeout:
            pass
    finally:
        srv.close()
    assert got == ["DTR=1 RTS=1", "DTR=1 RTS=1", "DTR=0 RTS=1", "DTR=0 RTS=0", "DTR=0 RTS=1", "DTR=0 RTS=0"]


def test_without_the_shim_a_pty_refuses_modem_lines():
    import serial
    m, s = pty.openpty()
    try:
        p = serial.Serial(os.ttyname(s), 115200, timeout=0.1)
        with pytest.raises(OSError):
            p.dtr = False
        p.close()
    finally:
        os.close(m)
        os.close(s)


def test_shim_is_cached_by_source_hash(tmp_path, cache, monkeypatch):
    if not any(wrap.shutil.which(c) for c in wrap.COMPILERS):
        pytest.skip("no C compiler")
    first = wrap.shim_path()
    assert first.parent == cache and first.name.startswith("modemshim-")
    assert wrap.shim_path() == first            # no rebuild
    src = tmp_path / "modemshim.c"
    src.write_text(wrap.SOURCE.read_text() + "\n/* edited */\n")
    monkeypatch.setattr(wrap, "SOURCE", src)
    assert wrap.shim_path() != first            # an edited source gets its own library


def test_no_compiler_is_one_clear_line(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(SimError, match="no C compiler found") as info:
        wrap.shim_path()
    assert "\n" not in str(info.value)


def test_exec_wrapped_errors(tmp_path):
    with pytest.raises(SimError, match="no command given"):
        wrap.exec_wrapped(tmp_path, [])
    with pytest.raises(SimError, match="no simulator is listening"):
        wrap.exec_wrapped(tmp_path, ["true"])
    (tmp_path / wrap.MODEM_SOCK).touch()
    with pytest.raises(SimError, match="command not found: no-such-cmd-xyz"):
        wrap.exec_wrapped(tmp_path, ["no-such-cmd-xyz"])
