"""The simulator's own errors: nothing here is shared with the test framework above the link."""
from __future__ import annotations


class SimError(Exception):
    """The simulated board could not start or was misused (bad state dir, port in use, unknown
    board or firmware build). The message names the file, port, build or board at fault."""


class BuildError(SimError):
    """A firmware build description (k210sim/builds/NAME.toml) is invalid or missing."""
