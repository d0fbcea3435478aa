"""The MicroPython flavour (MaixPy v0.6.x): raw REPL, file transfers, the device, the KPU driver.

Every MicroPython program the framework runs on a board is in ``code/`` (the device-code layer);
the modules here are host code that sends those programs and reads their answers.
"""
