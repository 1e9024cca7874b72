"""Root conftest: only what the repository's own tests and test plans need.

The harness's pytest plugin is loaded through its `pytest11` entry point (pyproject.toml), so
nothing here re-registers it. This file pins the repository root for tests that read shipped files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
