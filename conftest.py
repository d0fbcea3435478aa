"""Make a plain checkout usable without installing: pytest picks up the hil plugin from here.

When k210-hil is installed, its pytest11 entry point carries the same name ("hil.plugin"),
so pytest sees one plugin, not two.
"""
pytest_plugins = ["hil.plugin", "hil.plugin.health"]
