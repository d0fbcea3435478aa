"""k210-hil benchmarks: `python -m bench` (or bench/run) runs them all and prints one table."""
