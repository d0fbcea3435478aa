"""Where each folder of the checkout goes in the wheel; the rest of the metadata is pyproject.toml.

The checkout keeps its layout (suites/, rigs/, fixtures/models/ beside hil/). Installed, those
folders live inside the hil package, so ``pip install k210-hil`` carries what a user starts
with and installs no top-level ``suites``:

    hil/, k210sim/                  -> hil/..., k210sim/...   the packages, found by listing
    suites/                         -> hil/suites/            ``pytest --pyargs hil.suites``
    rigs/, rigs/firmware/, pools/   -> hil/rigs/...           the shipped rigs and firmware profiles
    fixtures/models/                -> hil/fixtures/models/   the manifest and the committed kmodels
    agent/                          -> hil/agent/sources/     the C agent and its reference firmware

hil.resources finds them in either place. tests/test_wheel.py checks that every tracked file of
these folders lands in the wheel, so a new kind of data file cannot be left behind unnoticed.
"""
from setuptools import find_namespace_packages, setup

# Folders of the checkout mapped into the hil package (name in the wheel -> folder in the checkout).
MAPPED = {
    "hil.suites": "suites",
    "hil.rigs": "rigs",
    "hil.rigs.firmware": "rigs/firmware",
    "hil.rigs.pools": "rigs/pools",
    "hil.fixtures": "fixtures",
    "hil.fixtures.models": "fixtures/models",
    "hil.agent.sources": "agent",
}
# Data files that are not Python modules. Large model fixtures are never shipped: they are built
# on first use from their recipe in the manifest (hil.kmodel.fixtures.ensure_fixture).
DATA = {
    "hil": ["project/templates/*.tmpl"],
    "hil.rigs": ["*.toml"],
    "hil.rigs.firmware": ["*.toml"],
    "hil.rigs.pools": ["*.toml"],
    "hil.fixtures.models": ["manifest.toml", "*.kmodel"],
    "hil.agent.sources": ["**/*.c", "**/*.h", "**/*.ld"],
    # the simulator, a package of its own in this distribution (its extra: k210-hil[sim])
    "k210sim": ["**/*.c", "**/*.h", "**/*.toml", "**/*.json", "**/*.txt", "**/*.py.in", "**/*.wat"],
}

setup(
    # namespace packages too: a folder of modules without __init__.py (k210sim/firmware) is one
    packages=find_namespace_packages(include=["hil", "hil.*", "k210sim", "k210sim.*"],
                                     exclude=["*.__pycache__", "*.__pycache__.*"]) + list(MAPPED),
    package_dir=MAPPED,
    package_data=DATA,
    include_package_data=False,
)
