"""The agent's line protocol against a seeded random corpus, on the running reference firmware:
random bytes, overlong lines, control characters, requests with one byte flipped, and well-framed
requests with random arguments. Every non-blank line gets exactly one well-formed answer, in
order, carrying the line's seq when it had a readable one; the firmware never traps or hangs,
and HELLO answers after every batch. A half line without its newline is dropped with an answer.
"""
from __future__ import annotations

import base64
import os
import random
import re
import time
import zlib

import pytest

from agent_qemu import AgentBoard, need_tools
from hil.agent import protocol as P

SEED = 20210924
LINES = int(os.environ.get("HIL_AGENT_FUZZ_LINES", "600"))   # raise it for a nightly run
BATCH = 30
LINE_MAX = 1024
SEQ = re.compile(rb"^>([0-9]{1,9})(?: |$)")
VERBS = ["HELLO", "MEM", "LOAD", "DEINIT", "PUT", "FPUT", "DATA", "END", "ABORT", "STAT", "READ", "RM",
         "LS", "FSHA", "FREAD", "hello", "REBOOTX", ""]          # never REBOOT: that is tested apart


@pytest.fixture(scope="module")
def qboard(tmp_path_factory):
    need_tools()
    board = AgentBoard(tmp_path_factory.mktemp("qemu-fuzz"))
    board.start()
    yield board
    board.close()


def _word(rng: random.Random) -> str:
    pick = rng.randrange(9)
    if pick == 0:
        return str(rng.choice([0, 1, -1, 7, 512, 4096, 0x300000, 0xFFFFFF, 2**32 - 1, 2**32, 2**63, -(2**63)]))
    if pick == 1:
        return hex(rng.randrange(0, 1 << rng.choice([8, 16, 24, 33])))
    if pick == 2:
        return rng.choice(["/sd/f", "/sd/hil/a.kmodel", "/flash/x", "/", "//", "/sd/../x", "/sd/" + "n" * 70])
    if pick == 3:
        return rng.choice(["FILE", "FLASH", "ALL"])
    if pick == 4:
        return "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([63, 64, 65])))
    if pick == 5:
        return base64.b64encode(rng.randbytes(rng.randrange(1, 600))).decode()
    if pick == 6:
        return "".join(chr(rng.randrange(0x21, 0x7F)) for _ in range(rng.randrange(1, 30)))
    if pick == 7:
        return str(rng.randrange(0, 70000))
    return rng.choice(["=", "*", ">", "<", "*deadbeef", "0x", "-"])


def _framed(rng: random.Random, seq: int) -> bytes:
    words = [rng.choice(VERBS)] + [_word(rng) for _ in range(rng.randrange(0, 5))]
    body = f">{seq} {' '.join(words)}".encode()
    return body + b" *%08x" % zlib.crc32(body)


def _plausible(rng: random.Random, seq: int) -> bytes:
    """A request of the right shape with random values (these mostly succeed)."""
    off = rng.choice([0, 5, 0x1000, 0x300000, 0xFFFFF0, rng.randrange(1 << 24)])
    words = rng.choice([["HELLO"], ["MEM"], ["LS", str(rng.randrange(4))], ["STAT", "/sd/f"],
                        ["FREAD", hex(off), str(rng.randrange(600))], ["FSHA", hex(off), str(rng.randrange(70000))],
                        ["DEINIT", "ALL"], ["ABORT"], ["LOAD", "FLASH", hex(off)], ["READ", "/sd/f", "0", "9"],
                        ["PUT", "/sd/f", "3", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
                        ["DATA", "0", "YWJj"], ["END"], ["TRUNC", "/sd/f", str(rng.randrange(100000))]])
    body = f">{seq} {' '.join(words)}".encode()
    return body + b" *%08x" % zlib.crc32(body)


def _line(rng: random.Random, seq: int) -> bytes:
    kind = rng.randrange(9)
    if kind == 0:                                        # random bytes
        line = rng.randbytes(rng.randrange(1, 200))
    elif kind == 1:                                      # printable garbage, maybe seq-like
        line = (rng.choice([b"", b">", b">12", b">1 "]) +
                bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randrange(0, 120))))
    elif kind == 2:                                      # overlong
        line = b">%d " % seq + bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randrange(1000, 3000)))
    elif kind == 3:                                      # a framed request with one byte changed
        line = bytearray(_framed(rng, seq))
        line[rng.randrange(len(line))] = rng.randrange(256)
        line = bytes(line)
    elif kind == 4:                                      # control bytes, CRs, NULs, escapes
        line = bytes(rng.choice([0, 0x1B, 0x7F, 0x0D, 0x03, 0xFF, 0x20]) for _ in range(rng.randrange(1, 40)))
    elif kind == 5:                                      # well framed, the right shape: executed
        line = _plausible(rng, seq)
    else:                                                # well framed, random arguments: executed
        line = _framed(rng, seq)
    return line.replace(b"\n", b"\x0b") + b"\n"          # one line each: newlines only at the end


def _expected(line: bytes) -> tuple[bool, str | None]:
    """(answered, seq) for one line as the agent sees it: CRs dropped, blank lines unanswered."""
    body = line[:-1].replace(b"\r", b"")
    if not body:
        return False, None
    m = SEQ.match(body[:LINE_MAX - 1])
    return True, m.group(1).decode() if m else None


def _answers(qboard, n: int, timeout: float = 30.0) -> list[bytes]:
    client = qboard.client
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        line = client._line(deadline)
        assert line is not None, f"only {len(out)} of {n} answers within {timeout:g} s: the agent hangs"
        if P.is_framed(line):
            out.append(line)
        else:
            assert b"trap" not in line and b"halted" not in line, f"the firmware crashed: {line!r}"
    return out


def test_random_lines_get_one_wellformed_answer_each(qboard) -> None:
    client = qboard.ensure()
    rng = random.Random(SEED)
    lines = [_line(rng, 1000 + i) for i in range(LINES)]
    kinds: dict[str, int] = {}
    for start in range(0, LINES, BATCH):
        batch = lines[start:start + BATCH]
        qboard.link.write(b"".join(batch))
        expected = [(_expected(line)) for line in batch]
        wanted = [seq for answered, seq in expected if answered]
        answers = _answers(qboard, len(wanted))
        for line, answer, seq in zip([ln for ln in batch if _expected(ln)[0]], answers, wanted):
            parsed = P.parse_answer(answer)                 # CRC and framing intact
            assert parsed.kind in ("OK", "ERR"), (line[:60], answer)
            assert (str(parsed.seq) if parsed.seq is not None else None) == seq, (line[:60], answer)
            kinds[parsed.status.split(":")[0] if parsed.kind == "ERR" else "OK"] = \
                kinds.get(parsed.status.split(":")[0] if parsed.kind == "ERR" else "OK", 0) + 1
        client.drain_events(0.05)
        assert client.exchange("HELLO", tries=1).ok, f"no HELLO after lines {start}..{start + BATCH}"
    assert qboard.qemu.running
    # the corpus reached the protocol's every layer
    seen = {k.split()[1] for k in kinds if k != "OK"}
    assert {"1001", "1002", "1003", "1004", "1005"} <= seen and kinds.get("OK", 0) > 20, kinds
    client.exchange("ABORT")
    client.deinit_all()
    m = client.memory()
    assert m.heap_free == m.heap_total, "the fuzz left memory allocated"


def test_half_line_is_dropped_with_an_answer(qboard) -> None:
    client = qboard.ensure()
    qboard.link.write(b">77 LOAD FILE /sd/never-finished")
    start = time.monotonic()
    answer = P.parse_answer(_answers(qboard, 1, timeout=10.0)[0])
    waited = time.monotonic() - start
    assert answer.seq == 77 and answer.status.startswith("ERR 1017 TIMEOUT: partial line dropped")
    assert waited >= 1.5, f"dropped after {waited:.2f} s; the agent waits 2 s"
    assert client.hello().files
