"""k210-hil: hardware-in-the-loop tests for Kendryte K210 boards running MaixPy."""

__version__ = "0.1.0"
