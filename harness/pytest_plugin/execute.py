"""The body of a scenario test: run the flow with retries of infrastructure errors only, label
the Allure result, record the outcome for the journal, and end the test with the status the
outcome maps to (passed / failed / broken / skipped) and a message categories.json recognises.

Exceptions map to outcomes (DESIGN.md, outcome taxonomy): `TestFailure` (including a 0xE6 under
Verifier) -> failed; `DutError` -> DUT error; `InfrastructureError` and a device that never
settled -> lab infrastructure (retried `plan.retries.infrastructure` times, each retry an Allure
step); `ConfigError` -> not run; anything else -> harness bug.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import allure
import pytest

from harness.errors import ConfigError, DutError, HarnessBug, InfrastructureError, TestFailure
from harness.lab.flow import ScenarioResult, ScenarioRunner
from harness.lab.kit import DutKit
from harness.outcomes import MESSAGE_PREFIX, Outcome
from harness.pytest_plugin.runinfo import POOL_KEY
from harness.pytest_plugin.selection import PlannedScenario
from harness.pytest_plugin.steps import utc_now
from harness.remote.deadline import Deadline
from harness.windows.actions import reconnect
from harness.windows.polling import DEFAULT_BACKOFF, WaitTimeout

RECORD = "harness"
#: A hand-written test's scenario (from its `dma_conditions` marker), set by the
#: `planned_scenario` fixture: the test is journaled and labelled like a plan scenario.
HANDWRITTEN = pytest.StashKey[PlannedScenario]()
#: When a hand-written test's scenario started (UTC, ISO 8601).
STARTED = pytest.StashKey[str]()


class ScenarioBroken(Exception):
    """Ends a test as Allure "broken" with a categorised message."""


def classify(exc: BaseException) -> tuple[Outcome, str]:
    if isinstance(exc, TestFailure):
        return Outcome.FAILED, str(exc)
    if isinstance(exc, DutError):
        return Outcome.DUT_ERROR, str(exc)
    if isinstance(exc, (InfrastructureError, WaitTimeout)):
        return Outcome.INFRASTRUCTURE_ERROR, str(exc)
    if isinstance(exc, ConfigError):
        return Outcome.NOT_RUN, f"configuration: {exc}"
    return Outcome.HARNESS_BUG, f"{type(exc).__name__}: {exc}"


def message(outcome: Outcome, text: str) -> str:
    prefix = MESSAGE_PREFIX.get(outcome)
    return f"{prefix} {text}" if prefix else text


def label(planned: PlannedScenario, title: str | None = None) -> None:
    s, plan = planned.scenario, planned.plan
    allure.dynamic.title(title or s.id)
    allure.dynamic.epic(plan.purpose)
    allure.dynamic.feature(s.report_feature)
    allure.dynamic.story(s.id)
    allure.dynamic.label("host", s.dut)
    allure.dynamic.tag(plan.name)
    for key, value in s.report_parameters():
        allure.dynamic.parameter(key, value)


def record(
    item: pytest.Item,
    planned: PlannedScenario,
    outcome: Outcome,
    text: str,
    *,
    started: str,
    duration_s: float,
    result: ScenarioResult | None = None,
    attempts: int = 1,
    expectation: dict[str, Any] | None = None,
    remote_s: float = 0.0,
    cpu_s: float | None = None,
    remote_calls: int | None = None,
    retries: list[str] | None = None,
) -> None:
    s = planned.scenario
    data: dict[str, Any] = {
        "scenario": s.id,
        "dut": s.dut,
        "outcome": outcome.value,
        "started": started,
        "duration_s": round(duration_s, 3),
        "evidence_level": result.verdict.evidence_level if result else "none",
        "plan": planned.plan.name,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "message": text,
        "attempts": attempts,
        "remote_s": round(remote_s, 3),
        "cpu_s": None if cpu_s is None else round(cpu_s, 3),
        "remote_calls": remote_calls,
        "conditions": s.conditions_json(),
    }
    if retries:
        data["retries"] = list(retries)  # the infrastructure errors each retry came after
    pool = item.config.stash.get(POOL_KEY, None)
    if pool is not None:
        reason = pool.quarantine.note(s.dut, outcome, text, s.id)
        if reason is not None:
            data["quarantined"] = reason
            with contextlib.suppress(Exception):  # outside a test (setup report) there is no step
                allure.attach(reason, name=f"DUT {s.dut} quarantined")
    if expectation is not None:
        data["expected"] = expectation
    if result is not None:
        data["expected"] = result.expectation.to_json()
        data["observed"] = result.observations.to_json()
        data["observations"] = list(result.verdict.observations)
        data["rebooted"] = result.rebooted
    item.user_properties.append((RECORD, data))


def _remote_seconds(kit: DutKit, since: int) -> float:
    return sum(e.duration_s for e in kit.transcript.entries[since:])


def execute(item: pytest.Item, planned: PlannedScenario, runner: ScenarioRunner) -> None:
    """Run one scenario as a test; see the module docstring."""
    label(planned)
    kit, plan = runner.kit, planned.plan
    started, t0, cpu0 = utc_now(), time.monotonic(), time.process_time()
    first_entry = len(kit.transcript.entries)
    attempts = 0
    delays = DEFAULT_BACKOFF.delays()
    result: ScenarioResult | None = None
    error: BaseException | None = None
    retried: list[str] = []
    while True:
        attempts += 1
        try:
            result = runner.run(planned.scenario)
            error = None
            break
        except (InfrastructureError, WaitTimeout) as exc:  # both classified infrastructure
            error = exc
            if attempts > plan.retries.infrastructure:
                break
            retried.append(f"attempt {attempts}: {exc}")
            with allure.step(f"retry {attempts} of {plan.retries.infrastructure} after: {exc}"):
                kit.strategy.forget()
                try:
                    reconnect(kit.host, Deadline.after(plan.timeouts.step_s, "reconnect"))
                except InfrastructureError as again:
                    allure.attach(str(again), name="reconnect failed")
                time.sleep(next(delays))
        except Exception as exc:  # classified below; the flow's teardown already ran
            error = exc
            break
        except pytest.fail.Exception as exc:
            if not str(exc).startswith("Timeout"):
                raise
            # pytest-timeout's backstop fired: some deadline did not hold. Record it as ours.
            error = HarnessBug(f"the backstop timeout fired ({exc}): a deadline did not hold")
            break
    transcript = "\n".join(e.render() for e in kit.transcript.entries[first_entry:])
    allure.attach(transcript, name="transcript", attachment_type=allure.attachment_type.TEXT)
    duration, remote = time.monotonic() - t0, _remote_seconds(kit, first_entry)
    if error is not None:
        outcome, text = classify(error)
    else:
        assert result is not None
        outcome, text = result.verdict.outcome, result.verdict.message
    record(
        item,
        planned,
        outcome,
        text,
        started=started,
        duration_s=duration,
        result=result,
        attempts=attempts,
        remote_s=remote,
        cpu_s=time.process_time() - cpu0,
        remote_calls=len(kit.transcript.entries) - first_entry,
        retries=retried,
    )
    shown = message(outcome, text)
    if outcome is Outcome.OBSERVED:
        allure.dynamic.label("observation", shown)
        allure.dynamic.description(shown)
    if outcome in (Outcome.FAILED, Outcome.EXPECTATION_MAY_BE_WRONG):
        pytest.fail(shown, pytrace=False)
    if outcome is Outcome.NOT_RUN:
        pytest.skip(shown)
    if error is not None:
        raise ScenarioBroken(shown) from error
