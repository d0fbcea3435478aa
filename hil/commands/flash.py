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

``--addr`` must be a multiple of 4 KiB (the flash is erased in 4 KiB sectors) and the data must
not overlap the firmware actually on the board. Where that firmware ends is ``--firmware-end N``
when given; else it is read from the board itself, through its running firmware (the length in
the image header at flash 0; a few seconds); else, when the board does not answer, it is the
rig's ``[firmware] image`` once wrapped (what a run flashes), else (simulated rigs) the image
size the simulator's control socket reports; without any of these only the flash bounds are
checked, and a note says so.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from hil.errors import ConfigError
from hil.inputfile import open_regular
from hil.isp.image import SECTOR
from hil.progress import LabelledMeters


ANSWER_S = 3.0     # how long the board's firmware gets to answer before its flash header is read


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (use e.g. 0x300000)") from None


def _firmware_end(args, rig, port: str, control, client) -> int | None:
    """Where the firmware on the board ends (see the module doc), with a note saying how it is known."""
    from hil.isp.image import looks_wrapped, wrapped_size
    if args.firmware_end is not None:
        return args.firmware_end
    end = _end_on_board(rig, port, control)
    if end is not None:
        _note(args, f"the firmware on the board ends at {end:#x} (its image header at flash 0)")
        return end
    image = rig.firmware.image
    if image is not None and Path(image).is_file():
        data = Path(image).read_bytes()
        end = len(data) if looks_wrapped(data) else wrapped_size(len(data))
        _note(args, f"the board did not answer; assuming it runs the rig's image {image.name} (ends at {end:#x})")
        return end
    end = _end_from_simulator(client)
    if end is not None:
        _note(args, f"the board did not answer; the simulator says its image ends at {end:#x}")
        return end
    _note(args, "the board did not answer and the rig names no [firmware] image: only the flash bounds "
                "are checked (--firmware-end N says where the firmware ends)")
    return None


def _end_from_simulator(client) -> int | None:
    """The image size a simulator's control socket reports (its status), if there is one."""
    if client is None:
        return None
    from hil.errors import SimError
    try:
        size = client.status().get("image_size")
    except SimError:
        return None
    return size if isinstance(size, int) and size > 0 else None


def _end_on_board(rig, port: str, control) -> int | None:
    """The end of the wrapped image at flash 0, read through the board's running firmware (its
    flag byte and length), or None when the board does not answer or holds no image there."""
    from dataclasses import replace

    from hil.board import Board
    from hil.errors import HilError
    from hil.isp.image import WRAP_HEADER, wrapped_size
    if rig.is_sim:
        board = Board(rig, sim_endpoints={"pty": port, "rfc2217": port,
                                          **({"control": str(control)} if control else {})})
    else:
        board = Board(replace(rig, serial=replace(rig.serial, port=port)))
    try:
        board.open()
        if not board.lifecycle.responsive(ANSWER_S):
            return None
        head = board.device.flash_read(0, WRAP_HEADER)
    except (HilError, NotImplementedError, OSError):
        return None
    finally:
        board.close()
    if len(head) != WRAP_HEADER or head[0] > 3:
        return None
    length = int.from_bytes(head[1:5], "little")
    end = wrapped_size(length)
    return end if 0 < length and end <= rig.board.flash_size else None


def _note(args, text: str) -> None:
    if not args.quiet:
        print(f"hil flash: {text}", file=sys.stderr)


def _port_and_enter(args, rig):
    """(port URL, enter_isp callable or None, control socket or None, its client or None)."""
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
    return port, enter, control, client


def run(args: argparse.Namespace) -> int:
    from hil.isp.flasher import IspFlasher
    from hil.rig import load_rig

    rig = load_rig(args.rig)
    path = Path(args.file)
    fd, _ = open_regular(path)        # a missing file, a FIFO or a device: one line before any port
    os.close(fd)
    port, enter, control, client = _port_and_enter(args, rig)
    end = None
    if args.addr is not None:
        if args.addr < 0 or args.addr % SECTOR:
            raise ConfigError(f"--addr {args.addr:#x}: must be a multiple of 4 KiB ({SECTOR:#x}): the flash "
                              f"is erased in 4 KiB sectors (e.g. {max(0, args.addr) // SECTOR * SECTOR:#x})")
        end = _firmware_end(args, rig, port, control, client)
    baud = args.baud or rig.serial.baud
    isp_baud = None if args.slow else (args.isp_baud or rig.serial.isp_baud or None)
    log = (lambda msg: print(f"hil flash: {msg}", file=sys.stderr)) if not args.quiet else None
    t0 = time.monotonic()
    meters = None if args.quiet else LabelledMeters(sys.stderr)
    with IspFlasher(port, rig.board, baud, isp_baud, progress=meters, log=log, enter_isp=enter,
                    stub=args.stub) as f:
        if args.addr is not None:
            n = f.flash_data(args.addr, path, firmware_end=end)
            where = f"at {args.addr:#010x}"
        else:
            n = f.flash_firmware(path)
            where = "as firmware at 0x00000000" if path.suffix != ".kfpkg" else "from the package"
        if meters is not None:
            meters.close()
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
