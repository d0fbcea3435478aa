"""The MaixPy-v1 firmware emulation the simulated K210 runs.

``MaixPyFirmware(ctx, build)`` is a SimProgram: ``run()`` prints the boot log, runs
boot.py/main.py and serves the friendly and raw REPL on ``ctx.uart``; ``halt()`` stops it.
Modules: firmware (boot, soft reset), repl (REPL state machines), readline (line editor),
console (UART I/O), cpu (Ctrl-C/halt delivery), runtime (one soft boot), policy + sandbox
(restricted compile/exec), mperrors (MicroPython wording), vfs (/flash, /sd), memory (heaps),
kpu (model loader), modules/ (one file per emulated MicroPython module).
"""
from k210sim.maixpy.firmware import MaixPyFirmware

__all__ = ["MaixPyFirmware"]
