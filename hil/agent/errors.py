"""Typed errors of the agent client.

Load failures are the framework's own ``KpuLoadError`` / ``MemoryOverflow`` (``text`` is the status
exactly as the firmware printed it, e.g. ``ERR 2006 NO_MEM: memory not enough``; ``code`` 2006), so
a device API can pass them to the suites unchanged. A link that garbles, goes quiet or reboots
under a request is an infrastructure error; a request the agent refused for its arguments is an
``AgentCommandError`` naming the request.
"""
from __future__ import annotations

from hil.errors import HilError, InfrastructureError, KpuLoadError, MemoryOverflow, TransferError

__all__ = ["AgentError", "AgentCommandError", "AgentFileNotFound", "AgentLinkError",
           "AgentTimeout", "AgentRebooted", "KpuLoadError", "MemoryOverflow", "TransferError",
           "NO_MEM", "LOAD_CODES"]

NO_MEM = 2006
LOAD_CODES = range(2000, 3000)      # the agent's load errors: 2001 PARAM ... 2010 NO_FILE


class AgentError(HilError):
    """The agent answered ERR. ``code``/``name``/``text`` as printed; ``request`` what was sent."""

    def __init__(self, where: str, request: str, code: int, name: str, text: str, status: str) -> None:
        self.request, self.code, self.name, self.text, self.status = request, code, name, text, status
        super().__init__(f"{where}: {request}: {status}")


class AgentCommandError(AgentError):
    """A request the agent refused (bad arguments, path, range, missing hook, full store)."""


class AgentFileNotFound(AgentCommandError, FileNotFoundError):
    """STAT/READ/RM of a file the firmware does not have (ERR 1012 NOT_FOUND)."""


class AgentLinkError(InfrastructureError):
    """The console did not carry a well-formed answer (garbled past the retries, or lost)."""


class AgentTimeout(AgentLinkError):
    """No answer within the timeout: the firmware hangs, crashed, or the link is down."""


class AgentRebooted(AgentLinkError):
    """The firmware announced a (re)boot while a request was outstanding."""
