"""The device farm: rig locks with expiry, rig pools, labgrid places, several rigs under xdist.

- ``lock``:    one user per rig: a lock file with owner and expiry, renewed by a heartbeat.
- ``pool``:    rigs/pools/NAME.toml, a list of equivalent rigs.
- ``claim``:   take rigs for a run (locks or labgrid places), wait for them, give them back.
- ``labgrid``: a labgrid place through labgrid's client API: acquire, serial URL, power, release.
- ``simpower``: the simulator's power as an HTTP power switch (labgrid's ``rest`` model).
"""
