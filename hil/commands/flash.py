"""`hil flash`: write a firmware or a model to a rig's board over the K210 UART ISP.

    hil flash --rig maixbit maixpy.bin                 # firmware at 0 (wrapped as kflash does)
    hil flash --rig maixbit --addr 0x300000 m.kmodel   # raw bytes at an address
    hil flash --rig maixbit build.kfpkg                # every entry of a kflash package
    hil flash --rig sim --sim-state /tmp/sim fw.bin    # a simulated rig: a running `hil sim serve`

The port is the rig's ``[serial] port`` unless ``--port URL`` overrides it (any pyserial URL:
a device path, rfc2217://host:port, socket://host:port). A simulated rig's port is only known
while its simulator runs: pass ``--sim-state DIR`` (the pty DIR/ttyMAIX0 and, since a pty has no
DTR/RTS, the control socket DIR/control.sock to reset into ISP) or ``--port`` and
``--control``.

A model written with ``--addr`` must not overlap the firmware: its end is ``--firmware-end``,
else the size of the rig's ``[firmware] image`` once wrapped, else (simulated rigs) the image
size the simulator's control socket reports; without any of these only the flash bounds are
checked.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hil.errors import ConfigError


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (use e.g. 0x300000)") from None


class _Progress:
    """One status line on a terminal; a few plain lines otherwise (CI logs)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last: tuple[str, int] = ("", -1)

    def __call__(self, label: str, done: int, total: int) -> None:
        pct = 100 * done // max(1, total)
        step = pct if self.tty else pct // 25 * 25
        if (label, step) == self._last:
            return
        self._last = (label, step)
        text = f"{label}: {pct:3d}% ({done}/{total} bytes)"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if done >= total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _firmware_end(args, rig, control=None) -> int | None:
    from hil.isp.image import looks_wrapped, wrapped_size
    if args.firmware_end is not None:
        return args.firmware_end
    image = rig.firmware.image
    if image is not None and Path(image).is_file():
        data = Path(image).read_bytes()
        return len(data) if looks_wrapped(data) else wrapped_size(len(data))
    if control is not None:
        from hil.errors import SimError
        try:
            size = control.status().get("image_size")
        except SimError:
            return None
        return size if isinstance(size, int) else None
    return None


def _port_and_enter(args, rig):
    """(port URL, enter_isp callable or None) for this rig and these options."""
    enter = client = None
    control = args.control
    port = args.port
    if args.sim_state is not None:
        state = Path(args.sim_state)
        port = port or str(state / "ttyMAIX0")
        control = control or state / "control.sock"
    if control is not None:
        from hil.simcontrol import SimControl
        client = SimControl(Path(control))
        enter = lambda: client.reset(boot=True)   # noqa: E731 - a one-line adapter
    if port is None:
        from hil.rig import SIM_PORT
        if rig.serial.port == SIM_PORT:
            raise ConfigError(f"rig {rig.name} is simulated: start `hil sim serve --state DIR` and "
                              "pass --sim-state DIR (or --port URL with --control SOCKET)")
        port = rig.serial.port
    return port, enter, client


def run(args: argparse.Namespace) -> int:
    from hil.isp.flasher import IspFlasher
    from hil.rig import load_rig

    rig = load_rig(args.rig)
    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    port, enter, client = _port_and_enter(args, rig)
    baud = args.baud or rig.serial.baud
    isp_baud = None if args.slow else (args.isp_baud or rig.serial.isp_baud or None)
    log = (lambda msg: print(f"hil flash: {msg}", file=sys.stderr)) if not args.quiet else None
    t0 = time.monotonic()
    with IspFlasher(port, rig.board, baud, isp_baud, progress=None if args.quiet else _Progress(),
                    log=log, enter_isp=enter, stub=args.stub) as f:
        if args.addr is not None:
            n = f.flash_data(args.addr, path, firmware_end=_firmware_end(args, rig, client))
            where = f"at {args.addr:#010x}"
        else:
            n = f.flash_firmware(path)
            where = "as firmware at 0x00000000" if path.suffix != ".kfpkg" else "from the package"
        if not args.no_reboot:
            f.reboot()
        s = f.stats
    took = time.monotonic() - t0
    rate = s.bytes_written / s.write_s if s.write_s > 0 else 0.0
    print(f"flashed {path.name} ({n} bytes {where}) on {rig.name} via {port} in {took:.1f} s; "
          f"write {rate / 1024:.0f} KiB/s = {rate / (s.baud / 10):.2f} of the line rate at {s.baud} baud")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "flash", help="flash a firmware or a model over the K210 UART ISP",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rig", required=True, help="rig name (rigs/NAME.toml) or path")
    p.add_argument("file", metavar="FILE", help="firmware .bin, wrapped image, .kfpkg, or data for --addr")
    p.add_argument("--addr", type=_int, metavar="ADDR",
                   help="write FILE raw at this flash address (e.g. 0x300000) instead of as firmware")
    p.add_argument("--port", metavar="URL", help="override the rig's serial port")
    p.add_argument("--sim-state", metavar="DIR",
                   help="state dir of a running `hil sim serve` (simulated rigs)")
    p.add_argument("--control", metavar="SOCKET",
                   help="simulator control socket used to reset into ISP when the port has no DTR/RTS")
    p.add_argument("--baud", type=int, help="initial baud (default: the rig's [serial] baud)")
    p.add_argument("--isp-baud", type=int, help="fast baud for the writes (default: the rig's isp_baud)")
    p.add_argument("--slow", action="store_true", help="stay at the initial baud")
    p.add_argument("--firmware-end", type=_int, metavar="N",
                   help="end of the firmware image on the board, for the --addr overlap check")
    p.add_argument("--stub", metavar="FILE", help="flash-mode stub binary (default: the installed kflash's)")
    p.add_argument("--no-reboot", action="store_true", help="stay in ISP mode afterwards")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or notes")
    p.set_defaults(func=run)
