"""The harness's own test suite: the slowest tests are started first.

The README's test command runs the suite on pytest-xdist workers (`--dist worksteal`). The
end-to-end tests (whole `harness run`s on a virtual lab, tens of seconds each) go first, then
the coordinator's (two controllers and a PostgreSQL server), the integration tests, then the
fast ones; a worker that runs out of work takes half of another
worker's queue, so the run ends with short tests instead of waiting for one long one.
"""

from __future__ import annotations

import pytest

_FIRST = ("e2e", "coordinator", "integration", "conformance")


def _rank(item: pytest.Item) -> int:
    parts = item.path.parts
    for rank, folder in enumerate(_FIRST):
        if folder in parts:
            return rank
    return len(_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: a file's tests keep their order
