"""The labs and plans that ship inside the package (package data of `harness.shipped`).

    lab_config/virtual.yaml        the default virtual lab (and virtual_pool.yaml)
    lab_config/example_lab.yaml    a commented template of a real lab
    lab_config/packages/           the virtual lab's signed driver packages
    testplans/*.yaml               the shipped plans
    testplans/test_scenarios.py    the pytest module that runs a plan's scenarios

In a clone of the repository, `lab_config/` and `testplans/` at the root are symlinks to the
directories here, so the paths of the README work there; an installed harness finds the same
files through this module. `harness init DIR` copies them into a directory of one's own.

The harness's CLI and pytest plugin default to `lab_config/virtual.yaml` of the current
directory when it exists, else to the packaged virtual lab (`default_lab()`).

This module is imported by the pytest plugin at every pytest start: standard library only.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: The lab a command uses when none is named, if it exists in the current directory.
LOCAL_LAB = Path("lab_config/virtual.yaml")
#: The test module `harness run` hands to pytest when no `test_*.py` lies next to the plan.
SCENARIO_TESTS = "test_scenarios.py"


def _root() -> Path:
    """This package's directory. The data must be real files (the lab's packages are read by
    path, and the virtual lab runs in a child process), so a zipped install is not supported."""
    root = files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(f"{__name__} is not installed as files on disk ({root!r})")
    return root


def packaged_lab_dir() -> Path:
    """The packaged lab_config/ directory (labs and their driver packages)."""
    return _root() / "lab_config"


def packaged_lab() -> Path:
    """The packaged default virtual lab, lab_config/virtual.yaml."""
    return packaged_lab_dir() / "virtual.yaml"


def packaged_testplans() -> Path:
    """The packaged testplans/ directory (the shipped plans and test_scenarios.py)."""
    return _root() / "testplans"


def packaged_plans() -> list[Path]:
    """The shipped plan files, by name."""
    return sorted(packaged_testplans().glob("*.yaml"))


def scenario_tests_module() -> Path:
    """The packaged testplans/test_scenarios.py."""
    return packaged_testplans() / SCENARIO_TESTS


def default_lab(cwd: Path | None = None) -> Path:
    """`lab_config/virtual.yaml` of the current directory (as that relative path) when it is a
    file, else the packaged virtual lab."""
    local = LOCAL_LAB if cwd is None else cwd / LOCAL_LAB
    return local if local.is_file() else packaged_lab()
