"""The device-code layer: every MicroPython program the framework runs on a board.

MaixPy v0.6.x runs MicroPython 1.9-1.11: no f-strings, so programs are built with repr() and %
or str.format. Host modules never embed MicroPython source; they call these builders.

- ``device``: memory figures, files, the KPU calls, flash reads, deriving a file from another,
  the link check.
- ``transfer``: the windowed raw receiver, the senders, hashing, rename, the REPL baud switch.
- ``kmodel_writer``: a generated kmodel v3 written on the board itself.
"""
