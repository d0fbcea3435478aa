"""Why a test failed, in one line a team lead reads at a glance.

The run record carries each test's one-line failure message (the plugin takes pytest's crash
message) and its measurements with their limits. The short reason is the message's head: the
parenthesised detail after it ("(largest v3 model ... 10 probes)") stays in the full message. When
the message says nothing useful (empty, a bare ``assert a >= b``), a measurement outside its
limits in that test says it instead: "threshold_sd_bytes = 1921024 bytes, 224 KiB below its band
2150000..2300000". Those band violations are also listed beside the failure they explain.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from hil.report.phrases import human_amount, human_value
from hil.report.runs import Measurement, TestResult

MAX_REASON = 160
# A detail in parentheses is cut off only when what stays says something on its own.
MIN_HEAD = 20
_PREFIXES = ("AssertionError: ", "Failed: ", "E   ")
# Messages that name no cause: empty, a bare assertion, or only where it was raised
# ("suites/test_x.py:42: AssertionError", the last line of a traceback).
_GENERIC = re.compile(r"^(|AssertionError|assert\b.*|Failed|failed|\S+:\d+: \w+)$")


@dataclass(frozen=True)
class Violation:
    """A measurement outside its limits in a failing test."""
    name: str
    unit: str
    value: float
    low: float | None
    high: float | None
    old: float | None = None        # the other side's value, when it was measured there

    @property
    def phrase(self) -> str:
        """'threshold_sd_bytes 2183168 -> 1921024 bytes: 224 KiB below its band 2150000..2300000'."""
        unit = f" {self.unit}" if self.unit else ""
        value = human_value(self.value, self.unit)
        if self.old is not None and self.old != self.value:
            head = f"{self.name} {human_value(self.old, self.unit)} -> {value}{unit}"
        else:
            head = f"{self.name} = {value}{unit}"
        return f"{head}: {self.where}"

    @property
    def where(self) -> str:
        """'224 KiB below its band 2150000..2300000', '7 KiB above its ceiling 1024'."""
        lo, hi, u = self.low, self.high, self.unit
        if lo is not None and hi is not None:
            limit = f"band {human_value(lo, u)}..{human_value(hi, u)}"
        elif lo is not None:
            limit = f"floor {human_value(lo, u)}"
        else:
            limit = f"ceiling {human_value(hi, u) if hi is not None else '?'}"
        if lo is not None and self.value < lo:
            return f"{human_amount(lo - self.value, u)} below its {limit}"
        if hi is not None and self.value > hi:
            return f"{human_amount(self.value - hi, u)} above its {limit}"
        return f"outside its {limit}"     # judged out by the suite by a rule of its own


def violations(new: TestResult, old: TestResult | None = None) -> tuple[Violation, ...]:
    """The measurements of ``new`` the suite judged outside their limits."""
    before = {m.name: m for m in old.measurements} if old is not None else {}
    out: dict[str, Violation] = {}
    for m in new.measurements:         # a name recorded twice keeps its last reading
        if not _outside(m):
            out.pop(m.name, None)
            continue
        o = before.get(m.name)
        out[m.name] = Violation(m.name, m.unit, m.value, m.low, m.high,
                                o.value if o is not None else None)
    return tuple(out.values())


def _outside(m: Measurement) -> bool:
    if m.ok is not None:
        return m.ok is False
    return (m.low is not None and m.value < m.low) or (m.high is not None and m.value > m.high)


def short_reason(message: str, found: tuple[Violation, ...] = ()) -> str:
    """The one-line reason for a failure (see the module docstring)."""
    text = " ".join(message.split())
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
    if _GENERIC.match(text) and found:
        return found[0].phrase
    head, sep, _ = text.partition(" (")
    if sep and len(head) >= MIN_HEAD:
        text = head.rstrip(" ,;:")
    if not text:
        return "failed, no message recorded"
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."
