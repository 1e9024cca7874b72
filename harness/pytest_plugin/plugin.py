"""The pytest plugin registered through the `pytest11` entry point: options (options.py),
fixtures (fixtures.py) and hooks (hooks.py).

Loading it must stay cheap: every pytest run in an environment with the harness installed loads
it, so the lab machinery is imported by the fixtures and hooks only when a test uses them.
"""

from __future__ import annotations

from harness.pytest_plugin.fixtures import (  # noqa: F401  (pytest fixtures)
    _prepared,
    driver_package,
    dut,
    dut_pool,
    lab,
    planned_scenario,
    plugged_device,
    scenario,
    scenario_runner,
    switch,
)
from harness.pytest_plugin.hooks import (  # noqa: F401  (pytest hooks)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_runtest_makereport,
    pytest_xdist_auto_num_workers,
)
from harness.pytest_plugin.options import pytest_addoption  # noqa: F401  (pytest hook)
