"""Board: an opened rig. Power, link, console, raw REPL and the device API, plus recovery.

``Board(rig, results=...)`` starts the simulator for a sim rig (``python -m k210sim serve`` as
a child process, stopped by its pid), opens the link and makes the power driver. ``start()``
brings the board to a known state (REPL answering, fresh soft boot); ``ensure_ready()`` is the
cheap per-test check; ``recover()`` climbs the ladder

    [reopen link] -> interrupt (Ctrl-C) -> soft reset (Ctrl-D) -> hard reset (DTR/RTS or power
    reset) -> power cycle

logging every rung in the serial log, skipping rungs the rig's power driver lacks. "reopen
link" comes first when the port was lost (a USB adapter unplugged and back, an RFC 2217 server
restarted) or left closed by a failed flash; a lost port is reopened again before the reset
rungs. What remains wrong after the ladder is an InfrastructureError (BootTimeout, LinkError,
ReplProtocolError): a rig problem, reported apart from firmware failures.

``Board.port`` is the port as logs and run records may show it (passwords in a URL masked,
hil.link.redact_url); the real URL is only used to open it.
"""
from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Callable

from hil.console import Console
from hil.errors import (BootTimeout, HilError, InfrastructureError, LinkError, PowerError,
                        ReplProtocolError, SimError)
from hil.link import Link, SerialLog, redact_url
from hil.power import PowerDriver, SimPower, make_power
from hil.repl import Repl
from hil.rig import RigSpec
from hil.simprocess import SimProcess

# The MicroPython banner line (facts/maixpy.md): "MicroPython v0.6.2-75-g973361c0d on 2022-04-16; ..."
BANNER_RE = re.compile(rb"MicroPython (v\S+) on (\S+); ([^\r\n]*)\r?\n")
PROMPT = b">>> "
INIT_END = re.compile(rb"\[MaixPy\] init end")
MAIN_GRACE_S = 3.0       # after "init end", how long boot.py/main.py get before we interrupt them
SOFT_RESET_WAIT_S = 5.0  # a soft reboot prints its banner quickly; longer means it is stuck
SOFT_ANSWER_S = 1.5      # a live REPL answers Ctrl-D ("soft reboot") at once; silence: go on up the ladder


AFTER_ISP_BANNER_S = 3.0   # how long to wait for a banner that may have gone out unread


# -- the board ---------------------------------------------------------------------------------------
class Board:
    """An opened rig. Use ``with Board(rig, results=...) as board: board.start(); ...``."""

    def __init__(self, rig: RigSpec, results: Path | None = None, log: SerialLog | None = None,
                 sim_state: Path | None = None, sim_endpoints: dict | None = None) -> None:
        """``sim_endpoints``: attach a sim rig to a simulator that is already running (its
        ``hil sim serve`` JSON line, or ``SimServer.endpoints``) instead of starting one."""
        self.rig = rig
        self.sim_endpoints = sim_endpoints
        self.profile = rig.profile
        self.results = Path(results) if results is not None else Path("results")
        self._first_log = log
        self.sim_state = Path(sim_state) if sim_state else self.results / "sim-state" / rig.name
        self.sim: SimProcess | None = None
        self.link: Link | None = None
        self.console: Console | None = None
        self.repl: Repl | None = None
        self.power: PowerDriver | None = None
        self._port_url = rig.serial.port
        self.banner = ""              # the last MicroPython version line seen
        self.firmware_version = ""    # version from that line (e.g. v0.6.2-75-g973361c0d)
        self.recoveries: list[str] = []
        self._device = None

    # -- opening and closing -----------------------------------------------------------------
    def open(self) -> "Board":
        """Start the simulator (sim rigs), open the port, make the power driver.

        A port that cannot be opened is a LinkError naming it: nothing else was touched.
        """
        try:
            control = None
            if self.rig.sim is not None:
                endpoints = self.sim_endpoints
                if endpoints is None:
                    self.sim = SimProcess(self.sim_state, self.rig.board.name,
                                          self.rig.sim.build, self.rig.sim.pace)
                    endpoints = self.sim.start()
                control = endpoints.get("control")
                self._port_url = self._sim_port(endpoints)
            self.link = Link(self._port_url, self.rig.serial.baud, self._first_log, name=self.rig.name)
            self.console = Console(self.link)
            self.repl = Repl(self.console)
            self.power = make_power(self.rig, lambda: self.link, Path(control) if control else None,
                                    self.note)
            if self.rig.sim is not None and isinstance(self.power, SimPower):
                self.power.set_sd(self.rig.sim.sd)
        except BaseException:
            self.close()
            raise
        return self

    def _sim_port(self, endpoints: dict) -> str:
        transport = self.rig.sim.transport if self.rig.sim else "pty"
        port = endpoints.get("rfc2217") if transport == "rfc2217" else endpoints.get("pty")
        if not port:
            raise SimError(f"rig {self.rig.name}: the simulator offers no {transport} endpoint ({endpoints})")
        return port

    @property
    def port(self) -> str:
        """The serial port, fit for logs and run records (secrets masked)."""
        return redact_url(self._port_url)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        if self.power is not None:
            self.power.close()
        if self.sim is not None:
            self.sim.stop()
            self.sim = None

    def __enter__(self) -> "Board":
        return self.open() if self.link is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- logging -----------------------------------------------------------------------------
    def note(self, text: str) -> None:
        if self.link is not None:
            self.link.note(text)

    @property
    def log_path(self) -> Path | None:
        return self.link.log_path if self.link else None

    def _need(self) -> tuple[Link, Console, Repl, PowerDriver]:
        if self.link is None or self.console is None or self.repl is None or self.power is None:
            raise LinkError(f"rig {self.rig.name}: board not opened")
        return self.link, self.console, self.repl, self.power

    # -- the device API ----------------------------------------------------------------------
    @property
    def device(self):
        if self._device is None:
            from hil.device import Device   # device builds on the board; imported on first use
            _, _, repl, _ = self._need()
            self._device = Device(self, repl)
        return self._device

    # -- booting -----------------------------------------------------------------------------
    def wait_boot(self, timeout: float | None = None, interrupt: bool = True) -> str:
        """Wait for the banner and the ``>>> `` prompt; interrupt a main.py that never ends.

        Returns the firmware version from the banner. BootTimeout shows the tail and log path.
        """
        _, console, repl, _ = self._need()
        timeout = self.rig.serial.boot_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        grace = min(MAIN_GRACE_S, max(0.5, timeout))
        repl.forget()
        self._forget_device_state()
        interrupted = False
        init_seen: float | None = None
        what = f"rig {self.rig.name}: waiting for the MicroPython banner"
        while True:
            wait_until = deadline
            if interrupt and not interrupted and init_seen is not None:
                wait_until = min(deadline, init_seen + grace)
            patterns = [BANNER_RE] if init_seen is not None else [BANNER_RE, INIT_END]
            try:
                index = console.expect(patterns, max(0.05, wait_until - time.monotonic()),
                                       error=BootTimeout, what=what)
            except BootTimeout:
                if not interrupt or interrupted:
                    raise
                # boot.py/main.py never returned (or we came in after the boot log): Ctrl-C it
                self.note("boot: no banner yet; interrupting boot.py/main.py with Ctrl-C")
                console.write(b"\x03\x03")
                interrupted = True
                deadline = max(deadline, time.monotonic() + grace)
                what += " (after Ctrl-C)"
                continue
            if index == 1:
                init_seen = time.monotonic()
                continue
            match = console.match
            console.read_until(PROMPT, max(1.0, deadline - time.monotonic()), error=BootTimeout,
                               what=f"rig {self.rig.name}: waiting for the >>> prompt after the banner")
            self.banner = match.group(0).decode("utf-8", "replace").strip()
            self.firmware_version = match.group(1).decode("utf-8", "replace")
            self.note(f"booted: {self.banner}")
            return self.firmware_version

    def responsive(self, timeout: float = 2.0) -> bool:
        """Raw REPL answers a round trip."""
        _, _, repl, _ = self._need()
        try:
            repl.enter_raw(tries=2, timeout=timeout / 2)
            return repl.exec("print(12321)", timeout) == b"12321\r\n"
        except (ReplProtocolError, HilError):
            return False

    def start(self) -> None:
        """At session start: get the REPL back whatever the board was doing, then a soft boot."""
        self.note(f"start of session on rig {self.rig.name} ({self.port})")
        if not self.responsive():
            self.recover("no REPL at session start")
        self.soft_reset()

    def soft_reset(self) -> None:
        """Ctrl-D in the friendly REPL: a clean interpreter (models freed), boot.py/main.py again."""
        _, console, repl, _ = self._need()
        repl.ensure_raw()
        repl.leave_raw()
        console.read_until(PROMPT, 2.0, error=None)
        console.drain(0.05, 0.5)
        self.note("soft reset (Ctrl-D)")
        console.write(b"\x04")
        self._forget_device_state()
        self.wait_boot(max(SOFT_RESET_WAIT_S, self.rig.serial.boot_timeout))
        repl.enter_raw()

    def _forget_device_state(self) -> None:
        """The interpreter restarted: models the device API loaded are gone."""
        if self._device is not None:
            self._device.handles.clear()

    def ensure_ready(self) -> None:
        """Cheap per-test check; climbs the recovery ladder when the REPL does not answer."""
        _, _, repl, _ = self._need()
        try:
            repl.ensure_raw()
            if repl.exec("print(12321)", 2.0) == b"12321\r\n":
                return
        except HilError:
            pass
        self.recover("REPL not answering before the test")

    def reboot_wait(self, reason: str) -> str:
        """The board restarts by itself (gc_heap_size(n), machine.reset()): wait for it."""
        self.note(f"board reboots: {reason}")
        version = self.wait_boot()
        self._need()[2].enter_raw()
        return version

    # -- power -------------------------------------------------------------------------------
    def _reopen_after_power(self) -> None:
        link, _, repl, power = self._need()
        if power.drops_port:
            link.reopen(self.rig.serial.boot_timeout)
        repl.reconnected()

    def power_cycle(self) -> str:
        """Remove power (or the nearest the rig can do) and wait for a full boot."""
        link, _, _, power = self._need()
        if power.can_power:
            self.note(f"power cycle ({power.name})")
            if power.drops_port:
                link.close()
            power.cycle()
        elif power.can_reset:
            self.note(f"power cycle: driver {power.name} cannot remove power; hard reset instead")
            power.reset()
        else:
            self.note("power cycle: rig has no power control; soft reset instead")
            self.soft_reset()
            return self.firmware_version
        self._reopen_after_power()
        version = self.wait_boot()
        self._need()[2].enter_raw()
        return version

    # -- recovery ----------------------------------------------------------------------------
    def recover(self, reason: str) -> str:
        """Climb the ladder until the REPL answers; returns the rung that worked."""
        link, console, repl, power = self._need()
        rungs: list[tuple[str, Callable[[], None]]] = []
        lost = link.lost or not link.is_open
        if lost:
            rungs.append(("reopen link", self._rung_reopen))
        rungs += [("interrupt", lambda: None), ("soft reset", self._rung_soft)]
        # Ctrl-C and Ctrl-A just went unanswered: Ctrl-D will be too. Straight to a reset.
        silent = repl.silent and not lost and power.can_reset
        if power.can_reset:
            rungs.append(("hard reset", self._rung_hard))
        if power.can_power:
            rungs.append(("power cycle", self._rung_cycle))
        self.note(f"recovery: {reason}; ladder: {', '.join(name for name, _ in rungs)}")
        tried = []
        for number, (name, action) in enumerate(rungs, 1):
            if silent and name in ("interrupt", "soft reset"):
                self.note(f"recovery rung {number} ({name}): skipped, the board answered nothing at all")
                continue
            self.note(f"recovery rung {number} ({name})")
            tried.append(name)
            try:
                action()
            except (InfrastructureError, PowerError) as exc:
                self.note(f"recovery rung {number} ({name}) failed: {exc}")
                continue
            if self.responsive():
                self.note(f"recovered by rung {number} ({name})")
                self.recoveries.append(name)
                return name
            self.note(f"recovery rung {number} ({name}): REPL still not answering")
        raise console.error(BootTimeout, f"rig {self.rig.name}: board did not recover ({reason}); "
                                         f"tried {', '.join(tried)}")

    def _rung_reopen(self) -> None:
        link, _, repl, _ = self._need()
        self.note(f"reopening {link.url}" + (" (link lost)" if link.lost else ""))
        link.reopen(self.rig.serial.boot_timeout)
        repl.reconnected()

    def _reopen_if_lost(self) -> None:
        link, _, repl, _ = self._need()
        if link.lost or not link.is_open:
            link.reopen(self.rig.serial.boot_timeout)
            repl.reconnected()

    def _rung_soft(self) -> None:
        _, console, repl, _ = self._need()
        console.write(b"\x03\x03\x02")     # out of raw REPL (and out of whatever ran)
        console.drain(0.1, 1.0)
        console.write(b"\x04")
        repl.forget()
        first = console.read(1, SOFT_ANSWER_S)
        if not first:
            raise console.error(BootTimeout, f"rig {self.rig.name}: no answer to Ctrl-D (soft reset)",
                                SOFT_ANSWER_S)
        console.unread(first)
        self.wait_boot(min(SOFT_RESET_WAIT_S, self.rig.serial.boot_timeout))

    def _rung_hard(self) -> None:
        _, _, _, power = self._need()
        self._reopen_if_lost()
        power.reset()
        self._reopen_after_power()
        self.wait_boot()

    def _rung_cycle(self) -> None:
        link, _, _, power = self._need()
        self._reopen_if_lost()
        if power.drops_port:
            link.close()
        power.cycle()
        self._reopen_after_power()
        self.wait_boot()

    # -- flashing ----------------------------------------------------------------------------
    def _isp(self):
        from hil.isp.flasher import IspFlasher   # lazy: only rigs that flash need the ISP client
        link, _, repl, power = self._need()
        enter = power.enter_isp if isinstance(power, SimPower) else None
        link.close()
        try:
            return IspFlasher(self._port_url, self.rig.board, self.rig.serial.baud,
                              self.rig.serial.isp_baud, log=self.note, enter_isp=enter)
        except BaseException:
            self._reopen_quietly()
            raise

    def _reopen_quietly(self) -> None:
        """After a failed flash: the REPL's port open again (the ladder resets the board)."""
        link, _, repl, _ = self._need()
        try:
            link.reopen(self.rig.serial.boot_timeout)
        except LinkError as exc:
            self.note(f"could not reopen {link.url} after the failed flash: {exc}")
        repl.reconnected()

    def _after_isp(self) -> str:
        """Back on the REPL after an ISP reboot.

        The link was closed while the flasher had the port, and a board that reboots then may
        print its banner to nobody: a USB-serial driver with no reader, ser2net, and an RFC 2217
        server all drop it. So wait briefly for the banner; if it does not come but the REPL
        answers, the firmware is running: a soft reset gives a fresh banner to read the version
        from. Only a board that neither prints nor answers gets the whole boot timeout.
        """
        link, _, repl, _ = self._need()
        link.reopen(self.rig.serial.boot_timeout)
        repl.reconnected()
        first = min(self.rig.serial.boot_timeout, AFTER_ISP_BANNER_S)
        try:
            version = self.wait_boot(first)
        except BootTimeout:
            if not self.responsive():
                version = self.wait_boot(max(self.rig.serial.boot_timeout - first, 1.0))
            else:
                self.note(f"no boot banner within {first:.1f} s of the ISP reboot (printed while the "
                          f"port was closed); the REPL answers: soft reset for a fresh banner")
                self.soft_reset()
                return self.firmware_version
        repl.enter_raw()
        return version

    def flash_firmware(self, image: Path) -> str:
        """Write a firmware build at flash 0 over ISP, reboot, wait for its banner."""
        self.note(f"flashing firmware {image}")
        self._device = None   # another build may behave differently: probe again
        flasher = self._isp()
        try:
            flasher.flash_firmware(image)
            flasher.reboot()
        except BaseException:
            flasher.close()
            self._reopen_quietly()
            raise
        flasher.close()
        return self._after_isp()

    flash = flash_firmware

    def flash_data(self, address: int, data: bytes) -> None:
        """Write raw bytes (a kmodel) at a flash address over ISP, then boot the firmware again."""
        self.note(f"flashing {len(data)} bytes at {address:#x}")
        flasher = self._isp()
        try:
            flasher.flash_data(address, data)
            flasher.reboot()
        except BaseException:
            flasher.close()
            self._reopen_quietly()
            raise
        flasher.close()
        self._after_isp()

    def flash_rig_image(self) -> bool:
        """Flash [firmware].image if the rig names one (once per image when flash_image_once)."""
        image = self.rig.firmware.image
        if image is None:
            return False
        digest = hashlib.sha256(image.read_bytes()).hexdigest()
        stamp = self.results / "flash-stamps" / f"{self.rig.name}.sha256"
        if self.rig.firmware.flash_image_once and stamp.is_file() and stamp.read_text().strip() == digest:
            self.note(f"firmware {image.name} already flashed (sha256 {digest[:12]}); not flashing again")
            return False
        self.flash_firmware(image)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest + "\n")
        return True
