"""Allure results rebuilt from journal.jsonl (harness/report/journal_allure.py) and the fullName
`harness run --resume` gives them when no other result of the run names the scenario test
(harness/cli/resume.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from allure_commons.model2 import Parameter
from allure_commons.utils import md5, represent
from allure_pytest.utils import get_history_id

from harness.cli.resume import scenario_test_full_name
from harness.config.lab import load_lab
from harness.config.plan import load_plan
from harness.config.scenarios import Scenario, expand
from harness.outcomes import Outcome
from harness.pytest_plugin.selection import PlannedScenario
from harness.report.allure_files import mark_observations, message_regex
from harness.report.journal import Journal, JournalEntry
from harness.report.journal_allure import SOURCE_LABEL, SOURCE_VALUE, rebuild_missing
from harness.report.matrix import allure_ids
from harness.report.run_dir import RunDir, RunInfo
from harness.report.run_pages import add_matrix_links

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "lab_config" / "virtual.yaml")
PLAN = load_plan(ROOT / "testplans" / "smoke.yaml")
SCENARIOS = {s.id: s for s in expand(PLAN, LAB)}
FULL_NAME = "#test_scenario"
STARTED = "2026-12-05T22:11:45.184Z"
STARTED_MS = 1796508705184

#: The Allure status of each final outcome (outcomes.py's mapping, as the report shows it).
STATUS = {
    Outcome.PASSED: "passed",
    Outcome.OBSERVED: "unknown",
    Outcome.FAILED: "failed",
    Outcome.EXPECTATION_MAY_BE_WRONG: "failed",
    Outcome.DUT_ERROR: "broken",
    Outcome.INFRASTRUCTURE_ERROR: "broken",
    Outcome.HARNESS_BUG: "broken",
}


def _run_dir(tmp_path: Path, scenarios: list[str]) -> RunDir:
    rd = RunDir(tmp_path / "20261205T221143Z-smoke")
    rd.create()
    rd.write_info(
        RunInfo(
            run_id=rd.path.name,
            plan=str(PLAN.path),
            plan_name=PLAN.name,
            purpose=PLAN.purpose,
            lab=str(LAB.path),
            lab_sha256="cd" * 32,
            harness_version="0",
            started="2026-12-05T22:11:43+00:00",
            scenarios=scenarios,
        )
    )
    rd.allure_results.mkdir(exist_ok=True)
    return rd


def _entry(s: Scenario, outcome: Outcome, message: str = "", duration: float = 1.5) -> JournalEntry:
    extra = {"message": message, "plan": PLAN.name, "conditions": s.conditions_json()}
    return JournalEntry(s.id, s.dut, outcome, STARTED, duration, "documented", extra)


def _only(rd: RunDir) -> dict[str, object]:
    (path,) = rd.allure_results.glob("*-result.json")
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("outcome", list(STATUS))
def test_each_final_outcome_gets_its_status_message_and_times(
    tmp_path: Path, outcome: Outcome
) -> None:
    s = next(iter(SCENARIOS.values()))
    rd = _run_dir(tmp_path, [s.id])
    Journal(rd.journal).append(_entry(s, outcome, "policy 2, expected 1", duration=2.25))
    (path,) = rebuild_missing(rd, SCENARIOS, full_name=FULL_NAME)
    data = _only(rd)
    assert path.name == f"{data['uuid']}-result.json"
    assert data["name"] == s.id and data["status"] == STATUS[outcome]
    assert (data["start"], data["stop"]) == (STARTED_MS, STARTED_MS + 2250)
    message = data["statusDetails"]["message"]  # type: ignore[index]
    assert message.endswith("policy 2, expected 1")
    if outcome is not Outcome.PASSED:  # the category of categories.json
        assert re.match(message_regex(outcome), message), message
    labels = {(x["name"], x["value"]) for x in data["labels"]}  # type: ignore[attr-defined]
    assert (SOURCE_LABEL, SOURCE_VALUE) in labels
    assert {("host", s.dut), ("story", s.id), ("epic", PLAN.purpose), ("tag", PLAN.name)} <= labels
    assert {"matrix.html#" + s.id} == {x["url"] for x in data["links"]}  # type: ignore[attr-defined]
    # the render's own passes leave it as it is
    assert mark_observations(rd.allure_results) == []
    add_matrix_links(rd.allure_results, Journal(rd.journal).latest())
    again = _only(rd)
    assert {(x["name"], x["value"]) for x in again["labels"]} == labels  # type: ignore[attr-defined]
    assert again["status"] == STATUS[outcome]


def test_identity_is_allure_pytests_and_taken_from_the_runs_other_results(tmp_path: Path) -> None:
    first, second = list(SCENARIOS.values())[:2]
    rd = _run_dir(tmp_path, [first.id, second.id])
    real = {
        "uuid": "a6790e3a-b598-4a7e-b433-26e251784da2",
        "name": first.id,
        "fullName": "test_scenarios#test_scenario",
        "status": "passed",
        "parameters": [{"name": "planned", "value": first.id}],
        "labels": [],
    }
    real_file = rd.allure_results / f"{real['uuid']}-result.json"
    real_file.write_text(json.dumps(real))
    Journal(rd.journal).append(_entry(first, Outcome.PASSED))
    Journal(rd.journal).append(_entry(second, Outcome.FAILED, "x"))
    (path,) = rebuild_missing(rd, SCENARIOS, full_name=FULL_NAME)
    data = json.loads(path.read_text())
    assert data["fullName"] == "test_scenarios#test_scenario"
    # what allure-pytest computes for the scenario test of `second`
    params = [Parameter(name="planned", value=second.id)]
    for key, value in second.conditions_json().items():
        text = value if isinstance(value, str) else json.dumps(value)
        params.append(Parameter(name=key, value=represent(text)))
    params.append(Parameter(name="build", value=represent(str(second.build))))
    assert data["parameters"] == [{"name": p.name, "value": p.value} for p in params]
    original = {"planned": PlannedScenario(PLAN, second)}
    assert data["historyId"] == get_history_id(data["fullName"], params, original)
    assert data["testCaseId"] == md5("test_scenarios#test_scenario")  # as allure-pytest
    assert json.loads(real_file.read_text()) == real  # the real result is untouched
    assert set(allure_ids(rd.allure_results)) == {first.id, second.id}


def test_nothing_to_rebuild_twice_nor_for_not_run_or_present_scenarios(tmp_path: Path) -> None:
    a, b, c = list(SCENARIOS.values())[:3]
    rd = _run_dir(tmp_path, [a.id, b.id, c.id])
    journal = Journal(rd.journal)
    journal.append(_entry(a, Outcome.PASSED))
    journal.append(_entry(b, Outcome.NOT_RUN, "quarantined"))
    journal.append(_entry(c, Outcome.DUT_ERROR, "no answer"))
    journal.append(_entry(c, Outcome.NOT_RUN, "again"))  # the latest line counts
    (path,) = rebuild_missing(rd, SCENARIOS, full_name=FULL_NAME)
    assert json.loads(path.read_text())["name"] == a.id
    before = {p.name: p.read_bytes() for p in rd.allure_results.iterdir()}
    assert rebuild_missing(rd, SCENARIOS, full_name=FULL_NAME) == []
    assert {p.name: p.read_bytes() for p in rd.allure_results.iterdir()} == before
    # the fallback fullName, as no other result names the scenario test
    assert json.loads(path.read_text())["fullName"] == FULL_NAME


def test_full_name_of_the_scenario_test_as_allure_pytest_names_it(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text((ROOT / "testplans" / "smoke.yaml").read_text())
    # no test module beside the plan: the packaged one, outside pytest's rootdir
    assert scenario_test_full_name(plan) == "#test_scenario"
    assert scenario_test_full_name(ROOT / "testplans" / "smoke.yaml") == (
        "test_scenarios#test_scenario"
    )
    (tmp_path / "test_lab.py").write_text(
        "def helper(planned):\n    pass\n\n\ndef test_mine(request, planned):\n    pass\n"
    )
    assert scenario_test_full_name(plan) == "test_lab#test_mine"
