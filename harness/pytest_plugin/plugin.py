"""The pytest plugin registered through the `pytest11` entry point.

It only wires the plugin's parts together: options (options.py) now; fixtures and hooks
(fixtures.py, hooks.py) join as the plan runner lands. Loading it must stay cheap and must not
import the lab machinery, since every pytest run in an environment with the harness installed
loads it.
"""

from __future__ import annotations

from harness.pytest_plugin.fixtures import lab_config  # noqa: F401  (pytest fixture)
from harness.pytest_plugin.options import pytest_addoption  # noqa: F401  (pytest hook)
