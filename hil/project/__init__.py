"""A firmware team's own project: ``hil init`` writes one (rigs, suites, CI) from ``templates/``."""
