"""Serial port names a rig may give: a device path, or any URL form pyserial opens.

pyserial's URL handlers (serial.urlhandler.protocol_*) are asked which schemes exist, so a
scheme pyserial knows is accepted and one it does not is refused naming the ones it does:

    rfc2217://host:port[?ign_set_control&poll_modem&timeout=S&logging=L]   a remote port (ser2net)
    socket://host:port[?logging=L]                                          raw TCP
    loop://[?logging=L]                                                     a loopback (tests)
    spy:///dev/ttyUSB0[?file=F&color&raw&all]                               a device, every byte dumped
    alt:///dev/ttyUSB0?class=PosixPollSerial                                a device through another class
    hwgrep://REGEXP[&n=N&skip_busy]                                         the first port whose USB id matches
    cp2110://HIDPATH                                                        a CP2110 HID bridge (needs hidapi)

The syntax is checked here, without opening anything (whether the device exists, the host
answers or a hwgrep pattern matches is the link's business, at open time). ``wrapped_device``
says which device a spy:// or alt:// URL opens, so a lock on the board is one lock whichever
form names its port.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from urllib.parse import urlsplit

LOG_LEVELS = ("debug", "info", "warning", "error")
# pyserial's options per scheme (anything else makes pyserial refuse to open the port)
OPTIONS = {"rfc2217": ("ign_set_control", "poll_modem", "timeout", "logging"),
           "socket": ("logging",), "loop": ("logging",),
           "spy": ("file", "color", "raw", "all"), "alt": ("class",)}
WRAPPERS = ("spy", "alt")          # a device path behind the URL


class PortError(ValueError):
    """The port text is not one pyserial would open; the message says why, in one line."""


def schemes() -> tuple[str, ...]:
    """The URL schemes this pyserial has handlers for."""
    import serial.urlhandler
    return tuple(sorted(m.name[len("protocol_"):] for m in pkgutil.iter_modules(serial.urlhandler.__path__)
                        if m.name.startswith("protocol_")))


def is_device(port: str) -> bool:
    return port.startswith("/") or (port.upper().startswith("COM") and port[3:].isdigit())


def check(port: str) -> None:
    """PortError when ``port`` is neither a device path nor a URL form pyserial accepts."""
    if "://" not in port:
        if not is_device(port):
            raise PortError(f"{port!r}: must be an absolute device path (/dev/ttyUSB0, /dev/serial/by-id/...) "
                            f"or a pyserial URL ({', '.join(s + '://' for s in schemes())})")
        return
    scheme = port.split("://", 1)[0].lower()
    known = schemes()
    if scheme not in known:
        raise PortError(f"{port!r}: unsupported URL scheme {scheme!r} (allowed: "
                        f"{', '.join(s + '://' for s in known)} or a device path)")
    if scheme == "hwgrep":
        _check_hwgrep(port)
        return
    if scheme == "cp2110":
        _check_cp2110(port)
        return
    parts = urlsplit(port)
    _check_options(port, scheme, parts.query)
    if scheme in ("rfc2217", "socket"):
        try:
            host, tcp_port = parts.hostname, parts.port
        except ValueError:
            host, tcp_port = None, None
        if not host or not tcp_port:
            raise PortError(f"{port!r}: needs host and port, e.g. {scheme}://127.0.0.1:7777")
    elif scheme in WRAPPERS:
        inner = parts.netloc + parts.path
        if not is_device(inner):
            raise PortError(f"{port!r}: {scheme}:// wraps a device path, e.g. {scheme}:///dev/ttyUSB0")
    if scheme == "alt":
        _check_alt(port)


def _check_options(port: str, scheme: str, query: str) -> None:
    allowed = OPTIONS.get(scheme, ())
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        if name not in allowed:
            raise PortError(f"{port!r}: unknown {scheme}:// option {name!r} (allowed: {', '.join(allowed) or 'none'})")
        if name == "timeout":
            try:
                if not 0 < float(value) < 3600:
                    raise ValueError
            except ValueError:
                raise PortError(f"{port!r}: timeout={value!r} must be a number of seconds > 0 and < 3600") from None
        if name == "logging" and value not in LOG_LEVELS:
            raise PortError(f"{port!r}: logging={value!r} must be one of {', '.join(LOG_LEVELS)}")
        if name == "file" and not value:
            raise PortError(f"{port!r}: file= needs a file name")


def _check_alt(port: str) -> None:
    """pyserial's own parser (it only looks the class up)."""
    import serial
    from serial.urlhandler import protocol_alt
    try:
        protocol_alt.serial_class_for_url(port)
    except (serial.SerialException, ValueError) as exc:
        raise PortError(f"{port!r}: {' '.join(str(exc).split())}") from None


def _check_hwgrep(port: str) -> None:
    """``hwgrep://REGEXP&n=N&skip_busy``: pyserial's options, which split on '&' (no '?')."""
    regexp, *options = port.split("://", 1)[1].split("&")
    if not regexp:
        raise PortError(f"{port!r}: hwgrep:// needs a pattern, e.g. hwgrep://1a86:7523 (a USB VID:PID)")
    try:
        re.compile(regexp, re.I)
    except re.error as exc:
        raise PortError(f"{port!r}: the pattern {regexp!r} is not a regular expression ({exc})") from None
    for option in options:
        name, _, value = option.partition("=")
        if name == "skip_busy" and not value:
            continue
        if name == "n" and value.isdigit() and int(value) >= 2:
            continue
        if name == "n":
            raise PortError(f"{port!r}: n={value!r}: pyserial takes n as the Nth match counted from 1, "
                            "and only from 2 on (leave n out for the first)")
        raise PortError(f"{port!r}: unknown hwgrep:// option {name!r} (allowed: n, skip_busy)")


def _check_cp2110(port: str) -> None:
    try:
        importlib.import_module("serial.urlhandler.protocol_cp2110")
    except ImportError:
        raise PortError(f"{port!r}: cp2110:// needs the hidapi package (pip install hidapi)") from None
    if not port.split("://", 1)[1]:
        raise PortError(f"{port!r}: cp2110:// needs the HID path of the bridge")


def wrapped_device(port: str) -> str | None:
    """The device path a spy:// or alt:// URL opens (None for anything else)."""
    if "://" not in port:
        return None
    parts = urlsplit(port)
    if parts.scheme.lower() in WRAPPERS:
        inner = parts.netloc + parts.path
        return inner if is_device(inner) else None
    return None

