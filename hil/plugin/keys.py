"""Where the plugin's parts find each other: stash keys and plugin names."""
from __future__ import annotations

from typing import Any

import pytest

SESSION_KEY = pytest.StashKey[Any]()       # config.stash: the HilSession of this process
CONTROLLER_KEY = pytest.StashKey[Any]()    # config.stash: the FarmController (rigs taken, locks)
MEASURE_KEY = pytest.StashKey[list]()      # item.stash: the test's measurements
BROKEN_KEY = pytest.StashKey[bool]()       # item.stash: the test's failure was the rig's fault
SESSION_PLUGIN = "hil-session"
HEALTH_PLUGIN = "hil-health"
SKIP_NO_RIG = "no --rig given: HIL tests need a rig (e.g. pytest --rig sim)"


def session_of(config: pytest.Config) -> Any:
    """The HilSession (hil.plugin.session), None without --rig."""
    return config.stash.get(SESSION_KEY, None)
