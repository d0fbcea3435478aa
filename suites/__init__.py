"""The HIL suites: what every firmware build must do, checked on a rig (``pytest --rig NAME``).

In the checkout they are ``suites/``; installed, the package ``hil.suites``
(``pytest --rig sim --pyargs hil.suites``). They import their helpers relatively (``from . import
kpu_support``), so the same files run in both places, and never reach the simulator.
"""
