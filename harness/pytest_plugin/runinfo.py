"""What a pytest run shares between its controller and its xdist workers (stash keys and the
`workerinput` names they travel under)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: The run's id: `harness run`'s run directory name, else one made up for this pytest session.
RUN_ID = pytest.StashKey[str]()
RUN_ID_INPUT = "harness_run_id"
#: The endpoints file of the virtual lab every process of the run uses (None: start one).
LAB_ENDPOINTS = pytest.StashKey[Path | None]()
ENDPOINTS_INPUT = "harness_lab_endpoints"
#: The session's `DutPool` (fixtures.py), for execute.record() to count outcomes for quarantine.
POOL_KEY = pytest.StashKey[Any]()

__all__ = ["ENDPOINTS_INPUT", "LAB_ENDPOINTS", "POOL_KEY", "RUN_ID", "RUN_ID_INPUT"]
