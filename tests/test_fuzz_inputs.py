"""Hypothesis fuzzing of the parsers that read what users and boards send us.

- the rig loader (hil.rig.parse_rig): generated TOML tables and mutated shipped rig files;
- the REPL: hil.device.micropython.repl.parse_traceback, and the raw REPL reply framing (Repl.exec against a board
  that answers anything at all);
- the ISP side: SLIP decoding (hil.isp.slip), reply/request parsing (hil.isp.packets), and a
  flash write against a board answering random bytes (hil.isp.loader.IspSession).

The property everywhere: a typed one-line error or a result, never another exception, never a
hang. Each test is bounded (max_examples, deadline) to a few seconds.
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hil.errors import IspError, ReplError, ReplProtocolError, RigConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.too_slow])


# -- the rig loader --------------------------------------------------------------------------------------
TABLES = ["rig", "serial", "power", "firmware", "storage", "sim", "labgrid", "extra"]
KEYS = ["name", "board", "description", "port", "baud", "fast_baud", "isp_baud", "boot_timeout", "driver",
        "on", "off", "cycle", "timeout", "off_time", "hub", "uhubctl", "profile", "image", "sd",
        "model_offset", "second_model_offset", "firmware", "pace", "seed", "transport", "place",
        "coordinator", "flash_image_once", "bogus"]
STRINGS = ["fuzz", "maix-bit", "maix-go", "sim", "/dev/ttyUSB0", "rfc2217://127.0.0.1:4000", "socket://h:1",
           "loop://", "rfc2217://:0", "none", "dtr-rts", "command", "uhubctl", "labgrid", "line", "off", "pty",
           "maixpy-v0.6.2-full", "maixpy-v9", "", "COM3", "relative/port", "../../etc/passwd", "\u00e9\x00"]
value = st.recursive(
    st.one_of(st.sampled_from(STRINGS), st.text(max_size=12), st.integers(-2**40, 2**40),
              st.floats(allow_nan=True), st.booleans()),
    lambda inner: st.lists(inner, max_size=4), max_leaves=6)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


def toml_text(doc: dict) -> str:
    out = []
    for table, items in doc.items():
        out.append(f"[{table}]")
        out.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in items.items())
    return "\n".join(out) + "\n"


rig_doc = st.dictionaries(st.sampled_from(TABLES), st.dictionaries(st.sampled_from(KEYS), value, max_size=6),
                          min_size=1, max_size=7)


def check_rig_text(text: str | bytes) -> None:
    from hil.rig import parse_rig
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            parse_rig(path)
        except RigConfigError as exc:
            message = str(exc)
            assert "\n" not in message and str(path) in message, message


@FAST
@given(rig_doc)
def test_fuzz_rig_loader_tables(doc: dict) -> None:
    doc.setdefault("rig", {}).setdefault("name", "fuzz")
    check_rig_text(toml_text(doc))


SHIPPED = [(ROOT / "rigs" / f"{n}.toml").read_text().replace(f'name = "{n}"', 'name = "fuzz"')
           for n in ("maixbit", "sim", "maixgo")]


@FAST
@given(st.sampled_from(SHIPPED), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 40), st.binary(max_size=8)),
                                          min_size=1, max_size=4))
def test_fuzz_rig_loader_mutated_files(text: str, edits) -> None:
    data = bytearray(text.encode())
    for at, cut, insert in edits:
        at %= len(data) + 1
        data[at:at + cut] = insert
    check_rig_text(bytes(data))


# -- the REPL --------------------------------------------------------------------------------------------
@FAST
@given(st.binary(max_size=400))
def test_fuzz_parse_traceback_never_raises(stderr: bytes) -> None:
    from hil.device.micropython.repl import parse_traceback
    err = parse_traceback(stderr)
    assert isinstance(err, ReplError) and err.exc_type
    assert not re.search(r"[\r\n]", err.exc_type + err.message)


name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
message = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=60)


@FAST
@given(name, message, st.lists(message, max_size=3))
def test_fuzz_parse_traceback_reads_what_micropython_prints(exc: str, text: str, frames) -> None:
    from hil.device.micropython.repl import parse_traceback
    body = "".join(f'  File "<stdin>", line {i}, in {f!r}\r\n' for i, f in enumerate(frames, 1))
    last = f"{exc}: {text}" if text else exc
    err = parse_traceback(f"Traceback (most recent call last):\r\n{body}{last}\r\n".encode())
    if text.strip() or not text:
        assert err.exc_type == exc
        assert err.message == (text if text.strip() else "")


class BoardReplying:
    """A link to a board in the raw REPL that answers every program with the same bytes."""

    url = "fuzz://board"
    log_path = None
    baud = 115200

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.pending = bytearray()
        self.bytes_in = 0
        self._tail = b""

    def write(self, data: bytes) -> None:
        if data.endswith(b"\x04"):
            self.pending += self.reply

    def read(self, n: int = 4096, timeout: float = 1.0) -> bytes:
        out = bytes(self.pending[:n])
        del self.pending[:n]
        self.bytes_in += len(out)
        self._tail = (self._tail + out)[-4096:]
        return out

    def drain(self, quiet: float = 0.05, limit: float = 1.0) -> bytes:
        return self.read(65536)

    def tail(self, n: int = 200) -> bytes:
        return self._tail[-n:] if n > 0 else b""

    def note(self, text: str) -> None:
        pass


def run_exec(reply: bytes):
    from hil.console import Console
    from hil.device.micropython.repl import Repl
    repl = Repl(Console(BoardReplying(reply)), use_raw_paste=False)
    from hil.board.state import State
    repl.events.enter(State.RAW)         # the board sits at the raw REPL's prompt already
    repl._prompt = True
    return repl.exec("print(1)", timeout=0.05)


@FAST
@given(st.binary(max_size=200))
def test_fuzz_raw_repl_framing_any_reply(monkeypatch_module, reply: bytes) -> None:
    t0 = time.monotonic()
    try:
        out = run_exec(reply)
        assert isinstance(out, bytes)
    except (ReplError, ReplProtocolError) as exc:
        assert "\n" not in str(exc)
    assert time.monotonic() - t0 < 2


def _no_boot_log(b: bytes) -> bool:
    from hil.device.micropython.bootlog import REBOOT_MARKERS
    return not any(m in b for m in REBOOT_MARKERS)


# A program that prints MaixPy's own boot-log lines is taken for a reboot (hil.device.micropython.bootlog.REBOOT_MARKERS).
payload = st.binary(max_size=80).map(lambda b: b.replace(b"\x04", b"")).filter(_no_boot_log)


@FAST
@given(payload, payload)
def test_fuzz_raw_repl_framing_well_formed(monkeypatch_module, out: bytes, err: bytes) -> None:
    reply = b"OK" + out + b"\x04" + err + b"\x04>"
    if not err:
        assert run_exec(reply) == out
    else:
        with pytest.raises(ReplError):
            run_exec(reply)


@pytest.fixture(scope="module")
def monkeypatch_module():
    """The reboot sniff waits REBOOT_SNIFF_S on a silent line; the fake line is silent at once."""
    import hil.device.micropython.repl
    old = hil.device.micropython.repl.REBOOT_SNIFF_S
    hil.device.micropython.repl.REBOOT_SNIFF_S = 0.0
    yield
    hil.device.micropython.repl.REBOOT_SNIFF_S = old


# -- the ISP side ----------------------------------------------------------------------------------------
@FAST
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_fuzz_slip_decoder_never_raises(chunks) -> None:
    from hil.isp.packets import parse_reply, parse_request
    from hil.isp.slip import SlipDecoder
    dec = SlipDecoder(max_frame=256)
    for chunk in chunks:
        for frame in dec.feed(chunk):
            assert len(frame.payload) <= 256 + 64
            parse_reply(frame.payload)
            parse_request(frame.payload)


@FAST
@given(st.lists(st.binary(max_size=100), min_size=1, max_size=5), st.binary(max_size=20),
       st.lists(st.integers(0, 1000), max_size=5))
def test_fuzz_slip_round_trip_split_anywhere(payloads, noise, cuts) -> None:
    from hil.isp.slip import SlipDecoder, encode
    payloads = [p for p in payloads if p]
    stream = noise.replace(b"\xc0", b"") + b"".join(encode(p) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    dec = SlipDecoder()
    frames = []
    for a, b in zip([0, *points], [*points, len(stream)]):
        frames += dec.feed(stream[a:b])
    assert [f.payload for f in frames] == payloads
    assert not any(f.damaged for f in frames)


@FAST
@given(st.binary(max_size=40))
def test_fuzz_parse_reply(payload: bytes) -> None:
    from hil.isp.packets import parse_reply
    reply = parse_reply(payload)
    if len(payload) < 2:
        assert reply is None
    else:
        assert (reply.op, reply.reason) == (payload[0], payload[1])
        assert "\n" not in reply.describe().replace("\\n", "")


class RandomBoard:
    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.pending = bytearray()
        self.baudrate = 115200
        self.timeout = 0.001

    def write(self, data: bytes) -> int:
        self.pending += self.reply
        return len(data)

    def read(self, n: int = 1) -> bytes:
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self.pending)

    def reset_input_buffer(self) -> None:
        self.pending.clear()


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=40))
def test_fuzz_isp_flash_write_against_any_reply(reply: bytes) -> None:
    from hil.boards import get_board
    from hil.isp.loader import IspSession, Retries, Timeouts
    session = IspSession(RandomBoard(reply), get_board("maix-bit"), name="fuzz0",
                         timeouts=Timeouts(reply=0.005, write_extra=0.005, busy_budget=0.02),
                         retries=Retries(flash_write=2))
    try:
        session.flash_write(0x300000, b"\x00" * 64)
    except IspError as exc:
        assert "\n" not in str(exc) and re.match(r"ISP flash write on fuzz0 \(maix-bit\): FLASH_WRITE", str(exc))
