"""The harness's own test suite on pytest-xdist workers: the slowest tests first, and a module
that shares one virtual lab between its tests kept on one worker.

- Order: the modules whose tests take 20-50 s each (whole `harness run`s, two controllers and a
  PostgreSQL server) go first, longest first; then the other end-to-end tests, the other
  coordinator tests, the integration tests, and the fast ones last. A parallel run ends well only
  when its last tests are short. The order of the tests inside a module is kept.
- Distribution (`SuiteScheduling`): each test of those slow modules is a unit of its own (each
  starts its own lab), so they spread over every worker; any other module is one unit, since many
  share a module-scoped virtual lab whose state one test leaves for the next.
- Bytecode: the suite starts some 330 Python processes (workers, `harness run`s, virtual labs,
  scenario pytests), each importing most of `harness`. Where `PYTHONDONTWRITEBYTECODE` is set
  (some CI images do), every one of them compiled every module from source and pytest rewrote
  every test module again in each worker: about 65 s of CPU of the loop's 476. The suite writes
  its bytecode caches (the checkout's `__pycache__/`, ignored by git) for itself and the
  processes it starts.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

try:
    from hypothesis import settings as hypothesis_settings
except ImportError:  # a dev dependency
    pass
else:
    # No per-example deadline: on the shared 2-core machine at -n 6 one example of
    # test_random_text_raises_only_inf_error took 372 ms once and 20 ms when replayed, and
    # hypothesis failed it as flaky. Speed is measured by bench/, not by unit tests.
    hypothesis_settings.register_profile("suite", deadline=None)
    hypothesis_settings.load_profile("suite")

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


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pytest-xdist is a dev dependency; without it the suite runs serially
    pass
else:

    class SuiteScheduling(LoadScopeScheduling):
        """xdist's scope scheduling with the units described above, handed out in the order
        above. (xdist's default reorders units by how many tests each holds, largest first:
        every one-test unit of the slow modules then went last, and a run ended with the fault
        campaign's 20 s cases on too few workers.)"""

        def __init__(self, config: pytest.Config, log: Any = None) -> None:
            config.option.loadscopereorder = False  # keep the collection order
            super().__init__(config, log)

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module.rsplit("/", 1)[-1] in SLOW_MODULES else module

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> SuiteScheduling:
        return SuiteScheduling(config, log)
