"""The agent protocol on the host side, without firmware: framing, answers, and how the client
handles what a wire can do to them (garbled, late, stale, a reboot in between)."""
from __future__ import annotations

import base64
import hashlib
import time
import zlib
from typing import Callable

import pytest

from hil.agent import protocol as P
from hil.agent.client import AgentClient
from hil.agent.errors import (AgentCommandError, AgentFileNotFound, AgentLinkError, AgentRebooted,
                              AgentTimeout, KpuLoadError, MemoryOverflow, TransferError)


def frame(body: str) -> bytes:
    raw = body.encode()
    return raw + b" *%08x\r\n" % zlib.crc32(raw)


class FakeAgent:
    """A byte stream whose far end answers each request line with ``reply(seq, words)``."""

    def __init__(self, reply: Callable[[int, list[str]], bytes | None]) -> None:
        self.reply = reply
        self.sent: list[str] = []
        self.out = b""

    def write(self, data: bytes) -> None:
        for line in data.decode().splitlines():
            body, _, crc = line.rpartition(" *")
            assert crc == f"{zlib.crc32(body.encode()):08x}", line
            seq_text, *words = body[1:].split(" ")
            self.sent.append(" ".join(words))
            answer = self.reply(int(seq_text), words)
            if answer:
                self.out += answer

    def read(self, n: int = 4096, timeout: float = 1.0) -> bytes:
        if not self.out:
            time.sleep(min(timeout, 0.005))
            return b""
        data, self.out = self.out[:n], self.out[n:]
        return data


def client(reply: Callable[[int, list[str]], bytes | None], **kw) -> tuple[AgentClient, FakeAgent]:
    fake = FakeAgent(reply)
    return AgentClient(fake, name="fake", timeout=kw.pop("timeout", 0.2), **kw), fake


# -- framing ---------------------------------------------------------------------------------------
def test_request_line_is_framed_with_zlib_crc32() -> None:
    line = P.encode_request(7, "LOAD", "FILE", "/sd/m.kmodel")
    assert line == b">7 LOAD FILE /sd/m.kmodel *%08x\n" % zlib.crc32(b">7 LOAD FILE /sd/m.kmodel")


@pytest.mark.parametrize("args, problem", [
    (("PUT", "/sd/a b"), "without spaces"),
    (("PUT", "/sd/\u00e9"), "printable ASCII"),
    (("DATA", "0", "A" * 1100), "exceeds"),
])
def test_request_words_are_checked(args, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        P.encode_request(1, *args)


def test_seq_range() -> None:
    for bad in (0, P.SEQ_MAX + 1):
        with pytest.raises(ValueError, match="seq"):
            P.encode_request(bad, "HELLO")


def test_parse_ok_err_and_boot() -> None:
    ok = P.parse_answer(frame("<3 OK id=1 version=3 size=4096").rstrip(b"\r\n"))
    assert (ok.seq, ok.kind, ok.int("id"), ok.fields["version"]) == (3, "OK", 1, "3")
    err = P.parse_answer(frame("<4 ERR 1007 OFFSET next=512: data out of sequence").rstrip(b"\r\n"))
    assert (err.code, err.name, err.text, err.int("next")) == (1007, "OFFSET", "data out of sequence", 512)
    assert err.status == "ERR 1007 OFFSET next=512: data out of sequence"
    boot = P.parse_answer(frame("<- BOOT agent=0.1.0 heap_free=6204352").rstrip(b"\r\n"))
    assert boot.seq is None and boot.kind == "BOOT" and boot.int("heap_free") == 6204352


@pytest.mark.parametrize("line, problem", [
    (b"<3 OK id=1 *00000000", "CRC mismatch"),
    (b"<3 OK id=1", "framing"),
    (b"hello *12345678", "framing"),
    (frame("<x OK").rstrip(b"\r\n"), "bad seq"),
    (frame("<3 ERR 20x6 NO_MEM: x").rstrip(b"\r\n"), "ERR needs"),
    (frame("<3 OK novalue").rstrip(b"\r\n"), "KEY=VALUE"),
])
def test_damaged_answers_are_frame_errors(line, problem) -> None:
    with pytest.raises(P.FrameError, match=problem):
        P.parse_answer(line)


# -- the client on a fake wire ---------------------------------------------------------------------
def test_chatter_and_stale_answers_are_skipped() -> None:
    def reply(seq, words):
        return (b"firmware printf output\r\n" + frame(f"<{seq + 100} OK stale=1")
                + frame(f"<{seq} OK heap_total=10 heap_free=5 models=0 model_bytes=0"))
    c, _ = client(reply)
    assert c.memory().heap_free == 5
    assert b"firmware printf output" in c.chatter


def test_unreadable_request_is_sent_again() -> None:
    calls = []

    def reply(seq, words):
        calls.append(seq)
        if len(calls) == 1:
            return frame(f"<{seq} ERR 1002 BAD_CRC: line checksum does not match")
        return frame(f"<{seq} OK id=4 version=3 size=100 main_mem=64 heap_free=1")
    c, fake = client(reply)
    m = c.load_file("/sd/m.kmodel")
    assert m.id == 4 and fake.sent == ["LOAD FILE /sd/m.kmodel"] * 2 and c.models == {4: m}


def test_garbled_answer_repeats_idempotent_requests_only() -> None:
    tries = []

    def reply(seq, words):
        tries.append(words[0])
        if len(tries) == 1:
            return b"<%d OK heap_free=1 *deadbeef\r\n" % seq
        return frame(f"<{seq} OK heap_total=2 heap_free=1 models=0 model_bytes=0")
    c, _ = client(reply)
    assert c.memory().heap_total == 2 and tries == ["MEM", "MEM"]

    c2, _ = client(lambda seq, w: b"<%d OK id=1 *deadbeef\r\n" % seq)
    with pytest.raises(AgentLinkError, match="garbled; whether it ran is unknown"):
        c2.load_file("/sd/m.kmodel")


def test_timeouts() -> None:
    c, fake = client(lambda seq, w: None, timeout=0.05, slow_timeout=0.05, retries=2)
    with pytest.raises(AgentTimeout, match=r"no answer to LOAD FLASH 3145728 within"):
        c.load_flash(0x300000)
    assert fake.sent == ["LOAD FLASH 3145728"]          # a LOAD is never repeated blindly
    with pytest.raises(AgentLinkError, match="MEM: no answer within 0.05 s after 3 tries"):
        c.memory()


def test_boot_line_during_a_request_clears_models() -> None:
    state = {"boot": False}

    def reply(seq, words):
        if words[0] == "LOAD":
            return frame(f"<{seq} OK id=1 version=3 size=100 main_mem=64 heap_free=1")
        state["boot"] = True
        return frame("<- BOOT agent=0.1.0 ready=1")
    c, _ = client(reply)
    c.load_file("/sd/a.kmodel")
    with pytest.raises(AgentRebooted, match="rebooted while MEM waited"):
        c.memory()
    assert c.models == {} and c.boots == 1


@pytest.mark.parametrize("status, cls", [
    ("ERR 2006 NO_MEM: memory not enough", MemoryOverflow),
    ("ERR 2002 KMODEL_VERSION: only kmodel v3/v4 supported", KpuLoadError),
    ("ERR 2010 NO_FILE: no such file", KpuLoadError),
])
def test_load_errors_carry_the_firmware_code_and_text(status, cls) -> None:
    c, _ = client(lambda seq, w: frame(f"<{seq} {status}"))
    with pytest.raises(cls) as info:
        c.load_file("/sd/m.kmodel")
    assert info.value.text == status
    assert info.value.code == int(status.split()[1])
    assert info.value.model == "/sd/m.kmodel"


def test_command_errors() -> None:
    c, _ = client(lambda seq, w: frame(f"<{seq} ERR 1012 NOT_FOUND: no such file"))
    with pytest.raises(AgentFileNotFound, match=r"fake: STAT /sd/x: ERR 1012 NOT_FOUND"):
        c.stat("/sd/x")
    assert not c.exists("/sd/x")
    c, _ = client(lambda seq, w: frame(f"<{seq} ERR 1014 RANGE: offset or size outside the file or flash"))
    with pytest.raises(AgentCommandError, match="RANGE"):
        c.flash_sha256(0, 1)


def test_put_resumes_where_the_agent_says_and_checks_the_sha() -> None:
    data = bytes(range(256)) * 5
    got = bytearray()
    state = {"dropped": False}

    def reply(seq, words):
        if words[0] == "PUT":
            return frame(f"<{seq} OK next=0 chunk_max=512")
        if words[0] == "DATA":
            off = int(words[1])
            chunk = base64.b64decode(words[2])
            if off == 512 and not state["dropped"]:       # pretend this chunk never arrived
                state["dropped"] = True
                return frame(f"<{seq} ERR 1007 OFFSET next=512: data out of sequence")
            got[off:off + len(chunk)] = chunk
            return frame(f"<{seq} OK next={len(got)}")
        sha = hashlib.sha256(bytes(got)).hexdigest()
        return frame(f"<{seq} OK size={len(got)} sha256={sha}")
    c, fake = client(reply)
    assert c.put("/sd/f", data) == hashlib.sha256(data).hexdigest()
    assert bytes(got) == data
    assert [w.split()[1] for w in fake.sent if w.startswith("DATA")] == ["0", "512", "512", "1024"]


def test_sha_mismatch_is_a_transfer_error() -> None:
    def reply(seq, words):
        if words[0] == "END":
            return frame(f"<{seq} ERR 1008 SHA_MISMATCH sha256={'0' * 64}: data differs from the announced sha256")
        return frame(f"<{seq} OK next={len(base64.b64decode(words[2])) if words[0] == 'DATA' else 0}")
    c, _ = client(reply)
    with pytest.raises(TransferError, match="SHA_MISMATCH"):
        c.put("/sd/f", b"abc")
