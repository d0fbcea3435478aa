"""Rig specs: one TOML file per rig (rigs/NAME.toml), read into frozen dataclasses.

Everything is checked here, before any board is touched: unknown tables and keys, wrong
types, bad port URLs, missing firmware images, unknown boards and firmware profiles, model
offsets that overlap the firmware. Every problem is one RigConfigError line naming the file,
the key and what is allowed.

A simulated rig has a [sim] table and ``port = "sim"``: the real port (a pty or an RFC 2217
URL) is only known once the simulator runs, so the board layer resolves it at run time.
Likewise a labgrid rig ([labgrid] table) takes ``port = "labgrid"`` (the default there): the
place's NetworkSerialPort, known once the place is acquired (hil.farm.labgrid). An emulated
rig (a table registered in hil.drivers.emulator, e.g. [qemu]) takes that table's name as its
port: its power driver starts the emulator when the board opens and knows the console then.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hil import ports
from hil.boards import BOARDS, BoardSpec
from hil.drivers.emulator import EMULATORS, EmulatorSpec, parse_emulator
from hil.drivers.power import PowerSpec, RigFacts, parse_power
from hil.errors import FirmwareProfileError, RigConfigError
from hil.firmware import FirmwareProfile, load_profile
from hil.rigdirs import RigSearch
from hil.tomlcheck import Table, named_table

SIM_PORT = "sim"
LABGRID_PORT = "labgrid"
DEFAULT_COORDINATOR = "127.0.0.1:20408"   # labgrid's own default
PACES = ("line", "off")
TRANSPORTS = ("pty", "rfc2217")
FLASH_ALIGN = 4096
MAX_BAUD = 12_000_000          # the fastest USB-serial bridges (FT2232H); the K210's UART stays below
MAX_BOOT_TIMEOUT_S = 3600.0    # a boot takes seconds; an hour is a typo, not a board


@dataclass(frozen=True)
class SerialSpec:
    port: str                       # device path, any pyserial URL (hil.ports), or "sim" / "labgrid"
    baud: int = 115200
    fast_baud: int = 0              # REPL baud for big transfers; 0 = never switch
    isp_baud: int = 1_500_000       # baud the ISP flasher switches to after the greeting
    boot_timeout: float = 10.0      # seconds from reset to the REPL prompt


@dataclass(frozen=True)
class FirmwareSpec:
    profile: str
    image: Path | None = None       # build to flash before the run (absolute, resolved)
    flash_image_once: bool = True   # skip flashing when this image was already flashed on the rig


@dataclass(frozen=True)
class StorageSpec:
    sd: bool = True                 # an SD card is fitted (tests marked requires_sd need it)
    model_offset: int = 0x300000
    second_model_offset: int = 0x500000


@dataclass(frozen=True)
class SimRigSpec:
    build: str                      # the simulator's firmware build to flash at start (a name
                                    # `python -m k210sim builds` lists; checked by the simulator)
    sd: bool = True                 # whether the simulated card is inserted
    pace: str = "line"              # "line": bytes take their wire time; "off": as fast as possible
    transport: str = "pty"          # which simulator front end the link uses


@dataclass(frozen=True)
class LabgridSpec:
    place: str
    coordinator: str = ""           # HOST:PORT; "" = $LG_COORDINATOR, else 127.0.0.1:20408

    @property
    def address(self) -> str:
        return self.coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


@dataclass(frozen=True)
class RigSpec:
    name: str
    board: BoardSpec
    description: str
    serial: SerialSpec
    power: PowerSpec
    firmware: FirmwareSpec
    storage: StorageSpec
    profile: FirmwareProfile = field(compare=False, repr=False)
    sim: SimRigSpec | None = None
    labgrid: LabgridSpec | None = None
    path: Path | None = field(default=None, compare=False)
    emulator: EmulatorSpec | None = None   # a board the framework runs itself ([qemu]: hil.drivers.emulator)

    @property
    def is_sim(self) -> bool:
        return self.sim is not None

    @property
    def port_from_place(self) -> bool:
        """The serial port is the labgrid place's (resolved when the place is acquired)."""
        return self.serial.port == LABGRID_PORT


def _err(msg: str) -> RigConfigError:
    return RigConfigError(msg)


def check_port(t: Table, port: str, is_sim: bool, is_labgrid: bool = False, emulated: str = "") -> str:
    """Validate serial.port's syntax (existence is the link's business, at open time).
    ``emulated``: the rig's emulator ([qemu] table), whose name is the port word it takes."""
    if emulated or port in EMULATORS:
        if not emulated:
            raise t.fail("port", f'"{port}" is the console of an emulated board: add a [{port}] table')
        if port != emulated:
            raise t.fail("port", f'{port!r}: a [{emulated}] rig takes port = "{emulated}" '
                                 f"(the emulator picks its console socket at run time)")
        return port
    if port == LABGRID_PORT:
        if not is_labgrid:
            raise t.fail("port", '"labgrid" takes the port of a labgrid place: add a [labgrid] table '
                                 'with place = "..."')
        return port
    if port == SIM_PORT:
        if not is_sim:
            raise t.fail("port", '"sim" is only for simulated rigs (add a [sim] table)')
        return port
    if is_sim:
        raise t.fail("port", f'{port!r}: a simulated rig takes port = "sim" '
                             "(the simulator chooses the real port at run time)")
    try:
        ports.check(port)
    except ports.PortError as exc:
        raise t.fail("port", str(exc)) from None
    return port


def _check_offset(t: Table, key: str, value: int, board: BoardSpec, fw_end: int) -> None:
    if value <= 0 or value % FLASH_ALIGN:
        raise t.fail(key, f"{value:#x} must be > 0 and a multiple of {FLASH_ALIGN:#x}")
    if value >= board.flash_size:
        raise t.fail(key, f"{value:#x} is past the end of the {board.name} flash ({board.flash_size:#x})")
    if value < fw_end:
        raise t.fail(key, f"{value:#x} overlaps the firmware image (0x0-{fw_end:#x})")


def parse_rig(path: Path) -> RigSpec:
    path = Path(path)
    top, r, name = named_table(path, "rig", _err)
    board_name = r.take("board", str)
    if board_name not in BOARDS:
        raise r.fail("board", f"{board_name!r} is not one of: {', '.join(BOARDS)}")
    board = BOARDS[board_name]
    description = r.take("description", str, "")
    r.done()

    lg = top.sub("labgrid", required=False)
    labgrid = None
    if lg is not None:
        labgrid = LabgridSpec(place=lg.take("place", str), coordinator=lg.take("coordinator", str, ""))
        if not labgrid.place:
            raise lg.fail("place", "must name a labgrid place")
        if labgrid.coordinator:
            host, sep, cport = labgrid.coordinator.rpartition(":")
            if not sep or not host or not cport.isdigit():
                raise lg.fail("coordinator", f"{labgrid.coordinator!r}: expected HOST:PORT, e.g. "
                                             f"labgrid.example.org:20408")
        lg.done()

    f = top.sub("firmware")
    profile_name = f.take("profile", str)
    try:
        profile = load_profile(profile_name, [path.parent / "firmware"])
    except FirmwareProfileError as exc:
        raise f.fail("profile", str(exc)) from None
    image_text = f.take("image", str, "")
    image = None
    if image_text:
        image = (path.parent / os.path.expanduser(image_text)).resolve()
        if not image.is_file():
            raise f.fail("image", f"{image_text!r}: no such file ({image})")
    firmware = FirmwareSpec(profile=profile_name, image=image,
                            flash_image_once=f.take("flash_image_once", bool, True))
    f.done()

    s = top.sub("sim", required=False)
    sim = None
    if s is not None:
        if "firmware" in s.data:
            raise s.fail("firmware", "renamed: [sim] build names the simulator's firmware build "
                                     "(e.g. build = \"maixpy-v0.6.2-full\"; `python -m k210sim builds` "
                                     "lists them), not a firmware profile")
        build = s.take("build", str)
        if not build or not all(c.isalnum() or c in "-_." for c in build):
            raise s.fail("build", f"{build!r} is not a build name (letters, digits, - _ .)")
        sim = SimRigSpec(build=build, sd=s.take("sd", bool, True),
                         pace=s.take_choice("pace", PACES, "line"),
                         transport=s.take_choice("transport", TRANSPORTS, "pty"))
        s.done()

    emulator = parse_emulator(top, path.parent)
    if emulator is not None and (sim is not None or labgrid is not None):
        raise _err(f"{path}: [{emulator.kind}] cannot be combined with [sim] or [labgrid]: "
                   f"it runs its own emulated board")

    if sim is not None and labgrid is not None:
        raise _err(f"{path}: [labgrid] and [sim] cannot both be given: a simulated rig starts its own "
                   "simulator; export a simulator through labgrid and use a [labgrid] rig instead")
    ser = top.sub("serial")
    if sim:
        port = ser.take("port", str, SIM_PORT)
    elif labgrid:
        port = ser.take("port", str, LABGRID_PORT)
    elif emulator:
        port = ser.take("port", str, emulator.kind)
    else:
        port = ser.take("port", str)
    port = check_port(ser, port, sim is not None, labgrid is not None, emulator.kind if emulator else "")
    baud = ser.take("baud", int, 115200)
    if not 0 < baud <= MAX_BAUD:
        raise ser.fail("baud", f"{baud}: must be 1..{MAX_BAUD}")
    fast = ser.take("fast_baud", int, 0)
    if fast < 0 or (fast and fast <= baud) or fast > MAX_BAUD:
        raise ser.fail("fast_baud", f"{fast}: must be 0 (never switch) or above baud ({baud}), "
                                    f"at most {MAX_BAUD}")
    isp_baud = ser.take("isp_baud", int, 1_500_000)
    if not 0 < isp_baud <= MAX_BAUD:
        raise ser.fail("isp_baud", f"{isp_baud}: must be 1..{MAX_BAUD}")
    boot_timeout = ser.take("boot_timeout", float, 10.0)
    if not 0 < boot_timeout <= MAX_BOOT_TIMEOUT_S:
        raise ser.fail("boot_timeout", f"{boot_timeout:g}: must be > 0 and at most {MAX_BOOT_TIMEOUT_S:g} seconds")
    ser.done()
    serial = SerialSpec(port=port, baud=baud, fast_baud=fast, isp_baud=isp_baud,
                        boot_timeout=boot_timeout)

    power = parse_power(top, RigFacts(is_sim=sim is not None, transport=sim.transport if sim else "",
                                      labgrid_place=labgrid.place if labgrid else "",
                                      emulator=emulator.kind if emulator else ""))
    if emulator is not None and power.driver != EMULATORS.get(emulator.kind).power:
        raise _err(f"{path}: power.driver: {power.driver!r} cannot power an emulated board: "
                   f"use {EMULATORS.get(emulator.kind).power!r} (it starts the emulator)")

    st = top.sub("storage", required=False)
    if st is None:
        storage = StorageSpec()
    else:
        fw_end = 0
        if image is not None:
            fw_end = image.stat().st_size
        storage = StorageSpec(sd=st.take("sd", bool, True),
                              model_offset=st.take("model_offset", int, 0x300000),
                              second_model_offset=st.take("second_model_offset", int, 0x500000))
        _check_offset(st, "model_offset", storage.model_offset, board, fw_end)
        _check_offset(st, "second_model_offset", storage.second_model_offset, board, fw_end)
        if storage.second_model_offset == storage.model_offset:
            raise st.fail("second_model_offset", f"{storage.second_model_offset:#x} equals model_offset")
        st.done()

    top.done()
    return RigSpec(name=name, board=board, description=description, serial=serial, power=power,
                   firmware=firmware, storage=storage, profile=profile, sim=sim,
                   labgrid=labgrid, path=path, emulator=emulator)


def rig_search(rig_dir: "Path | str | RigSearch | None" = None) -> RigSearch:
    """The lookup order for rigs (hil.rigdirs): a RigSearch as is, a directory as ``--rig-dir``."""
    return rig_dir if isinstance(rig_dir, RigSearch) else RigSearch.default(rig_dir)


def rig_names(rig_dir: "Path | str | RigSearch | None" = None) -> list[str]:
    """Every rig name the lookup order knows (the first file of a name wins)."""
    return sorted(rig_search(rig_dir).names())


def rig_path(name_or_path: str | Path, rig_dir: "Path | str | RigSearch | None" = None) -> Path:
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text:
        return Path(text)
    search = rig_search(rig_dir)
    found = search.find(f"{text}.toml")
    if found is None:
        known = ", ".join(sorted(search.names())) or "none"
        raise RigConfigError(f"rig {text!r} not found: no {text}.toml in {search.where()} (known rigs: {known})")
    return found


def load_rig(name_or_path: str | Path, rig_dir: "Path | str | RigSearch | None" = None) -> RigSpec:
    """Load and validate a rig by name (looked up as hil.rigdirs says) or by path."""
    return parse_rig(rig_path(name_or_path, rig_dir))
