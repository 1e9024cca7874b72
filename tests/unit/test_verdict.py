"""Judging observations against the oracle by evidence level; run exit codes; the journal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.domain.conditions import Conditions, DmaGuardPolicy, InfValue, SessionState
from harness.domain.policy import expect
from harness.lab.verdict import Observed, PlugObservations, judge
from harness.outcomes import Outcome, run_exit_code
from harness.report.journal import Journal, JournalEntry

KEY = "DEVPKEY_Device_DmaRemappingPolicy"
ALL = ("devpkey", "problem_code", "starts_at_plug", "dma_probe", "after_unlock")


def device(*, started: bool, problem: int = 0, policy: int | None = 1) -> Observed:
    return Observed(True, started, problem, policy, KEY, status="OK" if started else "Error")


def seen(
    at_plug: Observed, after: Observed | None = None, **probes: bool | None
) -> PlugObservations:
    return PlugObservations(at_plug, after, probes.get("locked"), probes.get("ok"))


# An opted-out driver (INF 0) on Windows 11, external port, plugged while locked:
# blocked with Code 55 (documented), starts at unlock.
OPT_OUT_LOCKED = Conditions(build=22631, inf=(InfValue.V0,), session=SessionState.LOCKED)


def test_matching_observations_pass() -> None:
    exp = expect(OPT_OUT_LOCKED)
    v = judge(
        exp, seen(device(started=False, problem=55), device(started=True), ok=True), checks=ALL
    )
    assert v.outcome is Outcome.PASSED, v.message
    assert v.mismatches == ()


def test_a_documented_mismatch_is_a_product_defect() -> None:
    exp = expect(OPT_OUT_LOCKED)
    assert exp.evidence["starts_at_plug"].value == "documented"
    v = judge(exp, seen(device(started=True), ok=True, locked=True), checks=ALL)
    assert v.outcome is Outcome.FAILED
    assert "starts_at_plug: expected False, observed True" in v.message
    assert v.evidence_level == "documented"


def test_an_inferred_mismatch_may_be_the_expectation() -> None:
    exp = expect(
        Conditions(
            build=22631,
            inf=(InfValue.V0,),
            dmaguard=DmaGuardPolicy.BLOCK_ALL,
            session=SessionState.LOCKED,
        )
    )
    assert exp.evidence["problem_code"].value == "inferred"
    v = judge(
        exp, seen(device(started=False, problem=28), device(started=False, problem=28)), checks=ALL
    )
    assert v.outcome is Outcome.EXPECTATION_MAY_BE_WRONG, v.message
    assert "problem_code: expected 55, observed 28" in v.message


def test_an_unverified_mismatch_is_only_an_observation() -> None:
    # INF 2 behind an exposed (M.2) port on Windows 10: the docs name only external ports.
    from harness.domain.conditions import PortKind

    exp = expect(Conditions(build=19045, inf=(InfValue.V2,), port=PortKind.EXPOSED))
    assert exp.evidence["devpkey"].value == "unverified"
    v = judge(exp, seen(device(started=True, policy=None), ok=True), checks=ALL)
    assert v.outcome is Outcome.OBSERVED
    assert v.observations and all("unverified" in o for o in v.observations)


def test_a_failed_dma_probe_on_a_started_unlocked_device_fails() -> None:
    exp = expect(Conditions(build=22631, inf=(InfValue.V1,)))
    v = judge(exp, seen(device(started=True, policy=2), ok=False), checks=ALL)
    assert v.outcome is Outcome.FAILED
    assert "dma_probe_unlocked" in v.message


def test_checks_not_in_the_plan_are_not_judged() -> None:
    exp = expect(OPT_OUT_LOCKED)
    v = judge(exp, seen(device(started=True)), checks=("devpkey",))
    assert v.outcome is Outcome.PASSED
    assert {c.field for c in v.checks} == {"devpkey", "devpkey_absent", "devpkey_key"}


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        ([Outcome.PASSED, Outcome.OBSERVED], 0),
        ([Outcome.PASSED, Outcome.FAILED, Outcome.INFRASTRUCTURE_ERROR], 1),
        ([Outcome.EXPECTATION_MAY_BE_WRONG], 1),
        ([Outcome.DUT_ERROR, Outcome.PASSED], 1),
        ([Outcome.PASSED, Outcome.INFRASTRUCTURE_ERROR], 3),
        ([Outcome.NOT_RUN], 3),
        ([], 3),
    ],
)
def test_run_exit_code(outcomes: list[Outcome], code: int) -> None:
    assert run_exit_code(outcomes) == code


def test_journal_keeps_complete_lines_and_ignores_a_torn_tail(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.jsonl")
    j.append(JournalEntry("a", "tb-01", Outcome.FAILED, "t0", 1.0, "documented", {"x": 1}))
    j.append(JournalEntry("a", "tb-01", Outcome.PASSED, "t1", 2.0, "documented"))
    with open(j.path, "a", encoding="utf-8") as fh:
        fh.write('{"scenario": "b", "dut"')  # the writer was killed mid-line
    assert [e.outcome for e in j.read()] == [Outcome.FAILED, Outcome.PASSED]
    assert j.latest()["a"].outcome is Outcome.PASSED
    assert j.read()[0].extra == {"x": 1}
    assert os.stat(j.path).st_mode & 0o077 == 0
