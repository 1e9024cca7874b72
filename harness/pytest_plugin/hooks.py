"""Hooks of the harness's pytest plugin.

- Test generation: a test that takes `planned` runs once per selected scenario of `--dma-plan`,
  with the scenario id as its test id, in run order (selection.py).
- xdist: the DUT scheduler (xdist_scheduler.py, registered by active.py) gives each worker
  whole DUTs; `-n auto` starts one worker per DUT of the selection (plugin.py).
- Deadlines: the plans' `timeouts.run_s` becomes one run deadline (wall clock, set in the
  controller and handed to xdist workers) that every scenario deadline nests in; each scenario
  test also gets a pytest-timeout mark as a backstop only (its scenario deadline, retries and
  teardown plus a margin), which a working deadline never reaches.
- Outcomes: a setup error (e.g. the DUT does not answer) is classified like one in the test
  body; a hand-written test (`dma_conditions`) is recorded from its call: passed, failed (an
  assertion), else classified like a scenario's error, with the oracle's expectation; the
  controller appends one line per finished scenario to `journal.jsonl` (flushed and
  fsynced) as soon as its teardown is reported, from whichever worker ran it.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import pytest

from harness.domain.policy import expect
from harness.outcomes import Outcome
from harness.pytest_plugin.deadlines import RUN_END, RUN_END_INPUT
from harness.pytest_plugin.execute import HANDWRITTEN, RECORD, STARTED, classify, record
from harness.pytest_plugin.options import read_options
from harness.pytest_plugin.reports_disk import (
    ReportsDiskGuard,
    is_disk_error,
    make_output_tolerant,
    note,
)
from harness.pytest_plugin.selection import PlannedScenario, selection
from harness.pytest_plugin.steps import utc_now
from harness.report.journal import Journal, JournalEntry


def pytest_configure(config: pytest.Config) -> None:
    run_dir = read_options(config).run_dir
    if run_dir:  # a reports disk that fills mid-run stops the run, not pytest (reports_disk.py)
        make_output_tolerant()
        config.pluginmanager.register(ReportsDiskGuard(), "harness-reports-disk")
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "planned" not in metafunc.fixturenames:
        return
    chosen = selection(metafunc.config).scenarios
    metafunc.parametrize("planned", [pytest.param(p, id=p.id) for p in chosen])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        planned = _planned(item)
        if planned is not None:
            t, r = planned.plan.timeouts, planned.plan.retries
            backstop = t.scenario_s * (r.infrastructure + 1) + t.teardown_s + 60
            item.add_marker(pytest.mark.timeout(backstop, method="signal"))


def _planned(item: pytest.Item) -> PlannedScenario | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("planned") if callspec is not None else None
    return value if isinstance(value, PlannedScenario) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if any(name == RECORD for name, _ in item.user_properties):
        return  # recorded already (by execute() or an earlier phase)
    planned = _planned(item)
    if planned is not None:
        if call.when != "setup" or call.excinfo is None:
            return
        kind, text = classify(call.excinfo.value)
        if call.excinfo.errisinstance(pytest.skip.Exception):
            kind, text = Outcome.NOT_RUN, str(call.excinfo.value)
        record(item, planned, kind, text, started=utc_now(), duration_s=call.duration)
        report.user_properties = list(item.user_properties)
        return
    handwritten = item.stash.get(HANDWRITTEN, None)
    if handwritten is None or (call.when == "setup" and call.excinfo is None):
        return
    if call.when == "teardown" and call.excinfo is None:
        return  # the call phase recorded it
    kind, text = _handwritten_outcome(call)
    started = item.stash.get(STARTED, None) or utc_now()
    expectation = expect(handwritten.scenario.oracle_conditions()).to_json()
    record(
        item,
        handwritten,
        kind,
        text,
        started=started,
        duration_s=call.duration,
        expectation=expectation,
    )
    report.user_properties = list(item.user_properties)


def _handwritten_outcome(call: pytest.CallInfo[None]) -> tuple[Outcome, str]:
    """A hand-written test's outcome, classified like a plan scenario's: a failed assertion is
    a failed expectation; lab trouble is infrastructure; anything else a harness bug."""
    if call.excinfo is None:
        return Outcome.PASSED, ""
    if call.excinfo.errisinstance(pytest.skip.Exception):
        return Outcome.NOT_RUN, str(call.excinfo.value)
    if call.excinfo.errisinstance((AssertionError, pytest.fail.Exception)):
        text = str(call.excinfo.value).strip().splitlines()
        return Outcome.FAILED, text[0] if text else "assertion failed"
    return classify(call.excinfo.value)


class JournalWriter:
    """Registered in the controller (or the only process) when `--run-dir` is given."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Journal the scenario once its teardown ran (the last report of a test)."""
        if report.when != "teardown":
            return
        data = next((d for name, d in reversed(report.user_properties) if name == RECORD), None)
        if isinstance(data, dict):  # what execute.record() put there (a test may add others)
            try:
                self.journal.append(JournalEntry.from_json(data))
            except OSError as exc:  # the reports disk is full: stop the run (reports_disk.py)
                if not is_disk_error(exc):
                    raise
                note(exc, f"journal line of {data.get('scenario')}")
