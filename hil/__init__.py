"""k210-hil: hardware-in-the-loop tests for Kendryte K210 boards running MaixPy.

Where things are, in the order data flows from a rig file to a report:

- ``rig.py`` (with ``boards.py``, ``firmware.py``, ``tomlcheck.py``, ``ports.py``): a rig file and
  the firmware profile it names, read into frozen specs and checked before anything is touched;
  ``rigdirs.py`` where they are looked up (the project's, ``$HIL_RIG_DIR``, the shipped ones) and
  ``resources.py`` where the shipped rigs, profiles, fixtures and suites are (package or checkout);
- ``drivers/``: pluggable parts declared with their TOML keys (power drivers today);
- ``link.py``, ``console.py``: bytes to and from the serial port, and expect over them;
- ``board/``: an opened rig, and its lifecycle, the one owner of the board's state (the only code
  that resets, reflashes, waits for a boot or recovers it);
- ``device/``: the device API the suites call, its MicroPython flavour (every program run on the
  board is in ``device/micropython/code/``), and the domain drivers: KPU, file cache, models on
  the board, flash models, memory edges;
- ``plugin/``: pytest: options, fixtures, outcomes, the session, the run record, rig health;
- ``report/``: run records read back, night against night, trend pages;
- ``isp/``, ``kmodel/``: the K210 ISP client, kmodel formats and fixtures; ``farm/``: locks, pools,
  labgrid; ``commands/``: the ``hil`` command; ``project/``: what ``hil init`` writes; ``sim/``: the
  simulated board (a package apart);
- ``steps.py``, ``progress.py``, ``retry.py``, ``units.py``, ``threshold.py``, ``errors.py``: steps
  with timings, transfer progress, the retry policy, number formatting, memory-edge searches, typed
  errors; ``atomicfile.py`` and ``inputfile.py``: files written whole (mode as the umask says) and
  files a user names read safely (a regular file, bounded).
"""

__version__ = "0.1.0"
