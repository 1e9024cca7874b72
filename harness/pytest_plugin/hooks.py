"""Hooks of the harness's pytest plugin.

- Test generation: a test that takes `planned` runs once per selected scenario of `--plan`,
  with the scenario id as its test id, in run order (selection.py).
- xdist: each DUT's scenarios form one `xdist_group`, so one worker drives one DUT;
  `-n auto` starts one worker per DUT of the selection.
- Deadlines: the plans' `timeouts.run_s` becomes one run deadline (wall clock, set in the
  controller and handed to xdist workers) that every scenario deadline nests in; each scenario
  test also gets a pytest-timeout mark as a backstop only (its scenario deadline, retries and
  teardown plus a margin), which a working deadline never reaches.
- Outcomes: a setup error (e.g. the DUT does not answer) is classified like one in the test
  body; the controller appends one line per finished scenario to `journal.jsonl` (flushed and
  fsynced) as soon as its teardown is reported, from whichever worker ran it.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import pytest

from harness.pytest_plugin.deadlines import RUN_END, RUN_END_INPUT
from harness.pytest_plugin.execute import RECORD, classify, record
from harness.pytest_plugin.options import read_options
from harness.pytest_plugin.selection import PlannedScenario, selection
from harness.pytest_plugin.steps import utc_now
from harness.report.journal import Journal, JournalEntry
from harness.report.outcomes import Outcome


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dma_conditions(dut, port, driver_package, kdp=, dmaguard=, verifier_dma=, "
        "test_signing=, session=): the conditions a hand-written scenario test needs",
    )
    run_dir = config.getoption("--dma-run-dir", None)
    if run_dir and not hasattr(config, "workerinput"):
        from pathlib import Path

        from harness.report.run_dir import RunDir

        writer = JournalWriter(Journal(RunDir(Path(run_dir)).journal))
        config.pluginmanager.register(writer, "harness-journal")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.stash[RUN_END] = workerinput.get(RUN_END_INPUT)
    else:
        limits = [p.timeouts.run_s for p in _plans(config) if p.timeouts.run_s is not None]
        config.stash[RUN_END] = time.time() + min(limits) if limits else None


def _plans(config: pytest.Config) -> tuple[Any, ...]:
    if not read_options(config).plans:
        return ()
    return selection(config).plans


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker's scenarios end by the same run deadline as the controller's."""
    node.workerinput[RUN_END_INPUT] = node.config.stash.get(RUN_END, None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "planned" not in metafunc.fixturenames:
        return
    chosen = selection(metafunc.config).scenarios
    # The xdist group is a mark of the parameter itself, so it exists from the item's creation:
    # xdist's own collection hook on a worker reads it to suffix the node id with the group.
    params = [
        pytest.param(p, marks=pytest.mark.xdist_group(p.scenario.dut), id=p.id) for p in chosen
    ]
    metafunc.parametrize("planned", params)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        planned = _planned(item)
        if planned is not None:
            t, r = planned.plan.timeouts, planned.plan.retries
            backstop = t.scenario_s * (r.infrastructure + 1) + t.reboot_s + 4 * t.step_s + 60
            item.add_marker(pytest.mark.timeout(backstop, method="signal"))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return max(1, len(selection(config).duts))


def _planned(item: pytest.Item) -> PlannedScenario | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("planned") if callspec is not None else None
    return value if isinstance(value, PlannedScenario) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    planned = _planned(item)
    if planned is None or call.when != "setup" or call.excinfo is None:
        return
    if any(name == RECORD for name, _ in item.user_properties):
        return
    kind, text = classify(call.excinfo.value)
    if call.excinfo.errisinstance(pytest.skip.Exception):
        kind, text = Outcome.NOT_RUN, str(call.excinfo.value)
    record(item, planned, kind, text, started=utc_now(), duration_s=call.duration)
    report.user_properties = list(item.user_properties)


class JournalWriter:
    """Registered in the controller (or the only process) when `--run-dir` is given."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Journal the scenario once its teardown ran (the last report of a test)."""
        if report.when != "teardown":
            return
        data = next((d for name, d in reversed(report.user_properties) if name == RECORD), None)
        if data is not None:
            self.journal.append(JournalEntry.from_json(dict(data)))
