"""Fixtures of the harness's pytest plugin.

`lab_config` loads and validates the lab inventory named by `--lab` once per session; a bad file
stops the session with the file, line and key before any test touches the lab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.config.lab import Lab


@pytest.fixture(scope="session")
def lab_config(pytestconfig: pytest.Config) -> Lab:
    from harness.config.lab import load_lab
    from harness.errors import ConfigError

    try:
        return load_lab(pytestconfig.getoption("--lab"))
    except ConfigError as exc:
        pytest.exit(f"lab config error: {exc}", returncode=2)
