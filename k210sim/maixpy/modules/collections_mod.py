"""ucollections (also ``collections``): namedtuple, OrderedDict, deque (MaixPy enables all)."""
from __future__ import annotations

import collections as host
from typing import TYPE_CHECKING, Any

from k210sim.maixpy.modules import module

if TYPE_CHECKING:
    from k210sim.maixpy.runtime import Runtime


class OrderedDict(host.OrderedDict):
    """Prints as MicroPython does: OrderedDict({1: 2}) (any CPython version)."""

    def __repr__(self) -> str:
        return "OrderedDict({%s})" % ", ".join(f"{k!r}: {v!r}" for k, v in self.items())


def build(rt: "Runtime", name: str):
    def namedtuple(typename: str, fields: Any) -> type:
        if isinstance(fields, str):
            fields = fields.replace(",", " ").split()
        cls = host.namedtuple(str(typename), [str(f) for f in fields])
        return cls

    def deque(iterable: Any = (), maxlen: Any = None, flags: int = 0) -> Any:
        return host.deque(iterable, maxlen)

    return module(name, namedtuple=namedtuple, OrderedDict=OrderedDict, deque=deque)
