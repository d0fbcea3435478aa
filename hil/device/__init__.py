"""The device layer: what suites call on a board, as drivers (hil.device.api says the boundary).

- ``api``: the abstract Device and KpuDriver every firmware flavour implements, and their types.
- ``micropython/``: the MicroPython flavour (MaixPy): raw REPL, transfers, the device code.
- ``agent/``: the C-SDK flavour: the k210-hil agent's client (hil.agent) behind the same API.
- ``flavours/``: which flavour serves a firmware family (a profile's ``family``).
- ``files``: the content-addressed file cache on the board; ``models``: manifest models on it.
- ``flash``: models written over ISP at flash offsets and read back on the board.
- ``memory_edge``: probes for the largest model that loads, from SD and from flash.
"""
