"""Pluggable parts of a rig, each declared next to its code: name, TOML keys, capabilities.

A part registers itself with its kind's registry (``hil.drivers.power.POWER``); rig.py reads a
rig file's table through that registry, so the schema, the validation and the driver live in
one file. Built-in drivers are the modules of the kind's package (found by listing it); drivers
from other packages register through the entry-point group the registry names, or simply by
being imported (a conftest.py importing the module is enough).
"""
