"""Typed errors shared by every layer.

Two families matter to a nightly report: infrastructure errors (the board, the cable, the
serial link or the host failed: reported as pytest *errors*, "broken" in allure) and firmware
errors (the build under test did something other than expected: reported as *failures*).
Every message names the rig, file, key, port, address or model at fault, on one line.
"""
from __future__ import annotations


class HilError(Exception):
    """Base of every error this package raises on purpose."""


class InfrastructureError(HilError):
    """The rig, not the firmware under test, is at fault (no boot, lost link, bad cable)."""


class ConfigError(HilError):
    """A user-supplied file or option is wrong; raised before any board is touched."""


class RigConfigError(ConfigError):
    """A rig file (rigs/NAME.toml) is invalid."""


class FirmwareProfileError(ConfigError):
    """A firmware profile (rigs/firmware/NAME.toml) is invalid or missing."""


class LinkError(InfrastructureError):
    """The serial link could not be opened, or was lost."""


class BootTimeout(InfrastructureError):
    """The board did not show its banner or prompt within the boot timeout."""


class ReplProtocolError(InfrastructureError):
    """The REPL did not answer as MicroPython's raw REPL does (no prompt, garbled framing)."""


class BoardRebooted(ReplProtocolError):
    """The board printed its boot log where a reply was expected: it rebooted under the code
    (a brownout, a watchdog, a reset). Whatever it held (raw REPL, loaded models) is gone."""


class ReplError(HilError):
    """Code run on the device raised; carries the device traceback.

    ``exc_type`` is the device exception's class name (e.g. ``ValueError``), ``message`` the
    text after it, ``traceback`` the full traceback text the device printed.
    """

    def __init__(self, exc_type: str, message: str, traceback: str = "") -> None:
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback
        super().__init__(f"{exc_type}: {message}" if message else exc_type)


class TransferError(InfrastructureError):
    """A file transfer to or from the board failed verification after its retries."""


class PowerError(InfrastructureError):
    """A power driver failed (command exited non-zero, hub not found, control socket gone)."""


class IspError(InfrastructureError):
    """The K210 ISP exchange failed; the message names the stage, opcode, address and last reply."""


class KpuError(HilError):
    """A KPU call (forward, deinit, ...) raised on the board: the firmware's class and text."""

    def __init__(self, text: str, exc_type: str = "Exception", call: str = "") -> None:
        self.text = text
        self.exc_type = exc_type
        self.call = call
        super().__init__(f"{call + ': ' if call else ''}{exc_type}: {text}")


class KpuLoadError(KpuError):
    """kpu.load failed with the firmware's error.

    ``code`` is the firmware's numeric code (2002, 2006, ...) or None for errors without one
    (bad path, model_addr); ``text`` is the exception text exactly as the firmware printed it.
    """

    def __init__(self, text: str, code: int | None = None, exc_type: str = "ValueError",
                 model: str = "") -> None:
        self.code = code
        self.model = model
        where = f" (model {model})" if model else ""
        HilError.__init__(self, f"{exc_type}: {text}{where}")
        self.text, self.exc_type, self.call = text, exc_type, "load"


class MemoryOverflow(KpuLoadError):
    """kpu.load ran out of system heap: the firmware's ERR_NO_MEM."""


class KModelFormatError(HilError):
    """A kmodel file is malformed. Names the file, the byte offset and the field at fault."""

    def __init__(self, source: str, offset: int, field: str, problem: str) -> None:
        self.source = source
        self.offset = offset
        self.field = field
        self.problem = problem
        super().__init__(f"{source}: offset {offset:#x}: {field}: {problem}")


class SimError(HilError):
    """The simulated board could not start or was misused (bad state dir, port in use)."""
