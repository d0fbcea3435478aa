"""labgrid places: acquire a place through labgrid's client API, take its serial port and power.

labgrid (>= 24, gRPC coordinator) is the engine: its coordinator decides who holds a place, its
exporters publish the resources, its power drivers switch the power. This module only calls
labgrid's own client pieces, the same ones ``labgrid-client`` uses:

- ``labgrid.remote.client.start_session(address)`` -> ``ClientSession``; its ``acquire()`` and
  ``release()`` (the ``labgrid-client acquire/release`` commands) take and give back a place.
- ``labgrid.Target`` + ``labgrid.resource.remote.RemotePlace`` expand an acquired place into its
  resources (``labgrid-client``'s own way, and what ``RemotePlace`` in an environment file does).
- The serial port is the place's ``NetworkSerialPort`` (an exporter's ser2net, or any RFC 2217 /
  raw TCP server): ``rfc2217://host:port?ign_set_control`` (labgrid's SerialDriver adds the same
  option, so ser2net in front of a pty works) or ``socket://host:port``; host and port go through
  labgrid's proxy manager, so ``LG_PROXY`` / SSH forwarding work as with labgrid-client.
- Power is the labgrid power driver for the place's power resource (``NetworkPowerPort`` ->
  ``NetworkPowerDriver``, ``NetworkUSBPowerPort`` -> ``USBPowerDriver``, ...), as
  ``labgrid-client power`` picks it.

Acquisition is labgrid's: a place stays acquired until released. The plugin releases at the end of
a run, also when it fails or is interrupted (Ctrl-C, SIGTERM). A run killed with SIGKILL leaves the
place acquired, as any labgrid client would: ``labgrid-client -p PLACE release --kick`` frees it
(labgrid has no expiry on acquisitions; file locks in hil.farm.lock do, for rigs outside labgrid).

One process talks to one coordinator (labgrid's RemotePlaceManager is a per-process singleton).
A place acquired by this user on this host is usable by every process of the run (labgrid allows
``host/user``), which is how xdist workers reach the place their controller acquired.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
from typing import Any, Callable

from hil.errors import ConfigError, InfrastructureError

# labgrid resource class -> labgrid driver class for power (as labgrid-client's power command)
POWER_DRIVERS = {
    "NetworkPowerPort": "NetworkPowerDriver",
    "NetworkUSBPowerPort": "USBPowerDriver",
    "NetworkSiSPMPowerPort": "SiSPMPowerDriver",
    "PDUDaemonPort": "PDUDaemonDriver",
    "TasmotaPowerPort": "TasmotaPowerDriver",
    "NetworkYKUSHPowerPort": "YKUSHPowerDriver",
}
SERIAL_RESOURCE = "NetworkSerialPort"
Note = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[len("Error: "):] if text.startswith("Error: ") else text


@contextlib.contextmanager
def _hush():
    """labgrid's message pump logs a lost coordinator at ERROR on the root logger (printed to
    stderr when nothing is configured); we raise one-line errors instead."""
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(before)


def _labgrid_client():
    try:
        from labgrid.remote import client
    except ImportError as exc:
        raise ConfigError(f"labgrid rigs need labgrid >= 24 (pip install 'k210-hil[farm]'): {exc}") from None
    return client


class Session:
    """One labgrid ClientSession (one coordinator) for this process; shared by its places."""

    _current: "Session | None" = None

    def __init__(self, address: str) -> None:
        client = _labgrid_client()
        self.address = address
        self.errors = (client.Error,)
        try:
            with _hush():
                self.client = client.start_session(address)
        except Exception as exc:  # noqa: BLE001 - grpc, OS and labgrid errors alike: one line
            raise InfrastructureError(f"labgrid coordinator {address}: cannot connect: {_one_line(exc)}") from None
        self.loop = self.client.loop

    @classmethod
    def get(cls, address: str) -> "Session":
        current = cls._current
        if current is not None and current.address != address:
            raise ConfigError(f"labgrid coordinators {current.address} and {address} in one process: "
                              "labgrid's RemotePlace manager serves one coordinator; use one per run")
        if current is None:
            current = cls._current = Session(address)
        return current

    def run(self, coro: Any, quiet: bool = True) -> Any:
        """Run one ClientSession coroutine; labgrid-client's prints go to a buffer."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext(), _hush():
            return self.loop.run_until_complete(coro)

    def sync(self) -> None:
        """Let the coordinator's place and resource updates in (the loop only runs when we call)."""
        if not self.run(self.client.sync_with_coordinator()):
            raise InfrastructureError(f"labgrid coordinator {self.address}: connection lost")

    def place(self, name: str) -> Any:
        places = self.client.places
        if name not in places:
            raise InfrastructureError(f"labgrid place {name!r} not found on coordinator {self.address} "
                                      f"(places: {', '.join(sorted(places)) or 'none'})")
        return places[name]

    @property
    def me(self) -> str:
        return f"{self.client.gethostname()}/{self.client.getuser()}"

    def close(self) -> None:
        if Session._current is self:
            Session._current = None
        try:
            self.run(self.client.stop())
            self.run(self.client.close())
        except Exception:  # noqa: BLE001 - closing a dead connection is not an error
            pass
        finally:
            self.loop.close()
            try:
                if asyncio.get_event_loop_policy().get_event_loop() is self.loop:
                    asyncio.set_event_loop(None)   # labgrid made it this thread's loop
            except RuntimeError:
                pass


class LabgridPlace:
    """A labgrid place for one rig: ``try_acquire()`` (controller) or ``attach()`` (a worker of a
    run whose controller acquired it); then ``serial_url()``, ``power_driver()``; ``release()``."""

    def __init__(self, address: str, name: str, rig: str = "", note: Note = _quiet) -> None:
        self.address = address
        self.name = name
        self.rig = rig or name
        self.note = note
        self.acquired = False          # acquired by this object (so release() gives it back)
        self._target: Any = None
        self._power: Any = None

    def __repr__(self) -> str:
        return f"LabgridPlace({self.name!r} @ {self.address})"

    @property
    def session(self) -> Session:
        return Session.get(self.address)

    # -- taking and giving back ----------------------------------------------------------------
    def try_acquire(self) -> str | None:
        """Acquire the place: None when done, else who or what holds it (one line)."""
        session = self.session
        session.sync()
        place = session.place(self.name)
        if place.acquired:
            if place.acquired == session.me:
                return (f"acquired by {place.acquired} (this user on this host: another run, or a killed "
                        f"one: labgrid-client -x {self.address} -p {self.name} release)")
            return f"acquired by {place.acquired}"
        session.client.args = argparse.Namespace(place=self.name, allow_unmatched=False, kick=False)
        try:
            session.run(session.client.acquire())
        except session.errors as exc:
            text = _one_line(exc)
            if "has no matching remote resource" in text:
                return f"not available: {text} (is its exporter running?)"
            if "already acquired" in text:
                session.sync()
                return f"acquired by {session.place(self.name).acquired or 'another client'}"
            raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name}: {text}") from None
        self.acquired = True
        self.note(f"labgrid: acquired place {self.name} on {self.address}")
        return None

    def attach(self) -> None:
        """Use a place this host/user already holds (acquired by the run's controller)."""
        session = self.session
        session.sync()
        place = session.place(self.name)
        if place.acquired != session.me and session.me not in getattr(place, "allowed", ()):
            held = f"acquired by {place.acquired}" if place.acquired else "not acquired"
            raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name} is {held}, not by "
                                      f"{session.me}: acquire it first (pytest --rig does)")

    def release(self) -> None:
        """Give the place back if this object acquired it; safe to call twice."""
        if self._target is not None:
            try:
                self._target.deactivate_all_drivers()
            except Exception:  # noqa: BLE001 - the place must be released whatever the drivers say
                pass
            self._target = None
            self._power = None
        if not self.acquired:
            return
        self.acquired = False
        session = self.session
        session.client.args = argparse.Namespace(place=self.name, allow_unmatched=False, kick=False)
        try:
            session.run(session.client.release())
        except session.errors as exc:
            raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name}: release failed: "
                                      f"{_one_line(exc)}") from None
        self.note(f"labgrid: released place {self.name}")

    # -- what the place holds ------------------------------------------------------------------
    def target(self) -> Any:
        """The place as a labgrid Target with its resources (labgrid-client's way)."""
        if self._target is None:
            from labgrid import Target
            from labgrid.resource.remote import RemotePlace, RemotePlaceManager
            session = self.session
            session.sync()
            manager = RemotePlaceManager.get()
            manager.session = session.client
            manager.loop = session.loop
            target = Target(self.name)
            try:
                RemotePlace(target, name=self.name)
            except session.errors as exc:
                raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name}: {_one_line(exc)}") from None
            self._target = target
        return self._target

    def resources(self, cls_name: str) -> list[Any]:
        return [r for r in self.target().resources if type(r).__name__ == cls_name]

    def serial_url(self) -> str:
        """The pyserial URL of the place's NetworkSerialPort."""
        ports = self.resources(SERIAL_RESOURCE)
        if not ports:
            raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name} has no {SERIAL_RESOURCE} "
                                      f"(resources: {self._names()})")
        if len(ports) > 1:
            named = [p for p in ports if p.name == "console"]
            if len(named) != 1:
                raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name} has "
                                          f"{len(ports)} serial ports: rename the board's to 'console' "
                                          "(add-named-match ... console)")
            ports = named
        port = ports[0]
        if not port.avail:
            raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name}: serial port "
                                      f"{port.host}:{port.port} is not available (exporter lost it?)")
        from labgrid.util.proxy import proxymanager
        host, tcp = proxymanager.get_host_and_port(port)
        if port.protocol == "rfc2217":
            return f"rfc2217://{host}:{tcp}?ign_set_control"
        if port.protocol == "raw":
            return f"socket://{host}:{tcp}"
        raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name}: serial protocol "
                                  f"{port.protocol!r} is not rfc2217 or raw")

    def power_driver(self, delay: float | None = None) -> Any:
        """An active labgrid power driver (PowerProtocol: on/off/cycle/get) for the place."""
        if self._power is not None:
            return self._power
        import labgrid.driver as drivers
        target = self.target()
        for resource in target.resources:
            driver_name = POWER_DRIVERS.get(type(resource).__name__)
            if driver_name is None:
                continue
            driver = getattr(drivers, driver_name)(target, name=None)
            if delay is not None and hasattr(driver, "delay"):
                driver.delay = float(delay)
            try:
                target.activate(driver)
            except Exception as exc:  # noqa: BLE001 - labgrid raises several kinds here
                raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name}: {driver_name}: "
                                          f"{_one_line(exc)}") from None
            self._power = driver
            return driver
        raise InfrastructureError(f"rig {self.rig}: labgrid place {self.name} has no power resource "
                                  f"labgrid can switch (resources: {self._names()}; known: "
                                  f"{', '.join(POWER_DRIVERS)})")

    def _names(self) -> str:
        return ", ".join(type(r).__name__ for r in self.target().resources if type(r).__name__ != "RemotePlace") or "none"


# -- the places of this process ------------------------------------------------------------------
_places: dict[tuple[str, str], LabgridPlace] = {}


def register(place: LabgridPlace) -> None:
    """Make an acquired place the one ``place_for`` returns (so power uses the same target)."""
    _places[(place.address, place.name)] = place


def place_for(address: str, name: str, rig: str = "", note: Note = _quiet) -> LabgridPlace:
    """The place this process acquired, else one attached to the run's acquisition."""
    key = (address, name)
    if key not in _places:
        place = LabgridPlace(address, name, rig, note)
        place.attach()
        _places[key] = place
    return _places[key]


def forget(place: LabgridPlace) -> None:
    if _places.get((place.address, place.name)) is place:
        del _places[(place.address, place.name)]


def detach(place: LabgridPlace) -> None:
    """Done with a place this process only attached to (an xdist worker's power): drop its
    drivers, and close the session once no place of this process is left."""
    if place.acquired:
        return                       # the controller's: released with the run's rigs
    place.release()                  # not acquired here: deactivates drivers, releases nothing
    forget(place)
    if not _places and Session._current is not None:
        Session._current.close()


def close_all() -> None:
    """Release what this process acquired, drop every place, close the session."""
    errors = []
    for place in list(_places.values()):
        try:
            place.release()
        except InfrastructureError as exc:
            errors.append(str(exc))
        forget(place)
    if Session._current is not None:
        Session._current.close()
    if errors:
        raise InfrastructureError("; ".join(errors))
