"""The agent's line protocol, host side: framing requests, reading answers (docs/csdk-agent.md).

    request   >SEQ VERB [ARG ...] *CRC\\n
    answer    <SEQ OK [KEY=VALUE ...] *CRC\\r\\n
              <SEQ ERR CODE NAME [KEY=VALUE ...]: TEXT *CRC\\r\\n
    event     <- BOOT KEY=VALUE ... *CRC\\r\\n            (the firmware (re)started)

CRC: zlib.crc32 of every byte before " *", 8 lowercase hex digits. Any other line on the console
is the firmware's own output ("chatter"): kept for the log, never an answer.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

LINE_MAX = 1024                 # the agent's longest request line, newline included
CHUNK_MAX = 512                 # largest DATA/READ payload the agent takes or gives
SEQ_MAX = 999_999_999           # the agent reads up to 9 digits
_WORD = re.compile(r"^[\x21-\x7e]+$")
_TAIL = re.compile(rb" \*([0-9a-f]{8})$")


class FrameError(ValueError):
    """An answer line that is not well-formed (bad CRC, bad framing)."""


def crc(data: bytes) -> str:
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def encode_request(seq: int, verb: str, *args: object) -> bytes:
    """One request line. Arguments are words: no spaces, printable ASCII (ValueError otherwise)."""
    if not 0 < seq <= SEQ_MAX:
        raise ValueError(f"seq {seq} outside 1..{SEQ_MAX}")
    words = [verb, *(str(a) for a in args)]
    for w in words:
        if not _WORD.match(w):
            raise ValueError(f"request word {w!r}: must be printable ASCII without spaces")
    body = f">{seq} {' '.join(words)}".encode("ascii")
    line = body + b" *" + crc(body).encode("ascii") + b"\n"
    if len(line) > LINE_MAX:
        raise ValueError(f"request line of {len(line)} bytes exceeds the agent's {LINE_MAX}")
    return line


@dataclass(frozen=True)
class Answer:
    """One framed line from the agent."""
    seq: int | None             # None for "-" (no request matched: an event, or garbage answered)
    kind: str                   # "OK", "ERR", or an event name ("BOOT")
    fields: dict[str, str] = field(default_factory=dict)
    code: int = 0               # ERR only
    name: str = ""              # ERR only
    text: str = ""              # ERR only: the fixed sentence after ": "
    status: str = ""            # the line as printed, without "<SEQ " and the CRC

    @property
    def ok(self) -> bool:
        return self.kind == "OK"

    def int(self, key: str) -> int:
        try:
            return int(self.fields[key])
        except KeyError:
            raise FrameError(f"answer {self.status!r} lacks {key}=") from None
        except ValueError:
            raise FrameError(f"answer {self.status!r}: {key}={self.fields[key]!r} is not a number") from None

    def str(self, key: str) -> str:
        try:
            return self.fields[key]
        except KeyError:
            raise FrameError(f"answer {self.status!r} lacks {key}=") from None


def _fields(words: list[str], line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise FrameError(f"{line!r}: {w!r} is not KEY=VALUE")
        out[key] = value
    return out


def is_framed(line: bytes) -> bool:
    """Whether a console line claims to be from the agent (starts with '<')."""
    return line.startswith(b"<")


def parse_answer(line: bytes) -> Answer:
    """Parse one framed line (CR/LF stripped). FrameError when it is damaged."""
    m = _TAIL.search(line)
    if not line.startswith(b"<") or m is None:
        raise FrameError(f"{line[:80]!r}: no '<' ... ' *CRC32' framing")
    body = line[:m.start()]
    if crc(body) != m.group(1).decode():
        raise FrameError(f"{line[:80]!r}: CRC mismatch (garbled on the wire)")
    try:
        text = body[1:].decode("ascii")
    except UnicodeDecodeError:
        raise FrameError(f"{line[:80]!r}: not ASCII") from None
    seq_text, _, rest = text.partition(" ")
    if seq_text == "-":
        seq = None
    elif seq_text.isdigit():
        seq = int(seq_text)
    else:
        raise FrameError(f"{text[:80]!r}: bad seq {seq_text!r}")
    words = rest.split(" ")
    kind = words[0]
    if kind == "ERR":
        head, sep, sentence = rest.partition(": ")
        hw = head.split(" ")
        if not sep or len(hw) < 3 or not hw[1].isdigit():
            raise FrameError(f"{text[:80]!r}: ERR needs CODE NAME ...: TEXT")
        return Answer(seq, "ERR", _fields(hw[3:], text), int(hw[1]), hw[2], sentence, rest)
    if not kind:
        raise FrameError(f"{text[:80]!r}: no status word")
    return Answer(seq, kind, _fields([w for w in words[1:] if w], text), status=rest)
