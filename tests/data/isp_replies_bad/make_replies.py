"""Regenerate this corpus: what a board might answer to an ISP flash write, as hex text.

    python tests/data/isp_replies_bad/make_replies.py

One ``.hex`` file per reply (whitespace-separated hex bytes, ``#`` comments), sent by a fake port
after every request the client writes. EXPECTED.json maps each file to "ok" (the client must
accept it) or to a substring of the one-line IspError the client must give. Run by
tests/test_corpus_inputs.py.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

CASES: dict[str, tuple[str, bytes, str]] = {
    # name: (comment, reply bytes, expected)
    "silence": ("no answer at all", b"", "no reply"),
    "line_noise": ("bytes with no frame marker", bytes(range(1, 0xC0)), "no reply"),
    "boot_log": ("the firmware booted instead of the stub", b"[MAIXPY] Pll0:freq:806000000\r\n", "no reply"),
    "empty_frames": ("only frame markers", b"\xc0\xc0\xc0\xc0", "no reply"),
    "one_byte_frame": ("a frame too short for op and reason", b"\xc0\xd4\xc0", "unreadable reply d4 "),
    "bad_escape": ("an escape byte followed by garbage", b"\xc0\xd4\xdb\x41\xc0", "unreadable reply d441"),
    "escape_at_end": ("a frame ending inside an escape", b"\xc0\xd4\xe0\xdb\xc0", "unreadable reply d4e0"),
    "wrong_op": ("a reply to another request", b"\xc0\xc3\xe0\xc0", "no reply"),
    "bad_checksum": ("the stub saw a bad checksum every time", b"\xc0\xd4\xe2\xc0", "BAD_DATA_CHECKSUM"),
    "bad_write": ("the flash refused the write", b"\xc0\xd4\xe6\xc0", "BAD_WRITE"),
    "unknown_reason": ("a reason code nobody defined", b"\xc0\xd4\x55\xc0", "0x55"),
    "busy_forever": ("the flash stays busy", b"\xc0\xd4\xe7\xc0", "busy"),
    "ok_twice": ("a duplicated OK (accepted once per request)", b"\xc0\xd4\xe0\xc0\xc0\xd4\xe0\xc0", "ok"),
    "ok_after_noise": ("boot chatter, then the OK", b"garbage\xff\xfe\xc0\xd4\xe0\xc0", "ok"),
    "ok_with_text": ("an OK carrying text", b"\xc0\xd4\xe0hello\xc0", "ok"),
}


def main() -> None:
    expected = {}
    for name, (comment, data, want) in CASES.items():
        text = f"# {comment}\n" + " ".join(f"{b:02x}" for b in data) + "\n"
        (HERE / f"{name}.hex").write_text(text)
        expected[f"{name}.hex"] = want
    (HERE / "EXPECTED.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
