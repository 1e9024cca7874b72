"""The harness's own test suite: the slowest tests are started first.

The README's test command runs the suite on pytest-xdist workers (`--dist worksteal`): a worker
that runs out of work takes half of another worker's queue, so a run ends well only when its
last tests are short. So the modules whose tests take 20-50 s each (whole `harness run`s,
two controllers and a PostgreSQL server) go first, then the other end-to-end tests, the other
coordinator tests, the integration tests, and the fast ones last. The order of the tests inside
a module is kept.
"""

from __future__ import annotations

import pytest

#: Modules measured at 20-50 s per test (`--durations`), longest first.
SLOW_MODULES = (
    "test_report_pages.py",
    "test_cli_run.py",
    "test_coordinator_controllers.py",
    "test_coordinator_together.py",
    "test_coordinator_changes.py",
    "test_reports_disk.py",
    "test_fault_campaign.py",
    "test_signals_teardown.py",
)
_THEN = ("e2e", "coordinator", "integration", "conformance")


def _rank(item: pytest.Item) -> tuple[int, int]:
    name = item.path.name
    if name in SLOW_MODULES:
        return 0, SLOW_MODULES.index(name)
    parts = item.path.parts
    for rank, folder in enumerate(_THEN, start=1):
        if folder in parts:
            return rank, 0
    return len(_THEN) + 1, 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: a module's tests keep their order
