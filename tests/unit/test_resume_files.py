"""What a resume does to the files a killed attempt left: allure-results/ and junit.xml."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.outcomes import Outcome
from harness.report.allure_prune import prune_results
from harness.report.journal import JournalEntry
from harness.report.junit_merge import add_journal_cases, merge_junit


def _result(d: Path, uuid: str, scenario: str, attachments: list[str]) -> None:
    data = {
        "uuid": uuid,
        "name": scenario,
        "status": "passed",
        "parameters": [{"name": "planned", "value": f"'{scenario}'"}],
        "steps": [{"name": "s", "attachments": [{"source": a} for a in attachments]}],
    }
    (d / f"{uuid}-result.json").write_text(json.dumps(data))


def test_prune_removes_the_rerun_scenarios_and_orphans_only(tmp_path: Path) -> None:
    d = tmp_path / "allure-results"
    d.mkdir()
    _result(d, "u1", "tb-01.a", ["a1-attachment.txt"])
    _result(d, "u2", "tb-01.b", ["a2-attachment.txt"])  # killed: a status, no journal line
    for name in ("a1-attachment.txt", "a2-attachment.txt", "a3-attachment.txt"):
        (d / name).write_text("x")  # a3: attached by the killed scenario, no result at all
    (d / "c1-container.json").write_text(json.dumps({"uuid": "c1", "children": ["u1", "u2"]}))
    (d / "c2-container.json").write_text(json.dumps({"uuid": "c2", "children": ["u2"]}))
    (d / "x.json.tmp").write_text("{")
    (d / "categories.json").write_text("[]")

    pruned = prune_results(d, ["tb-01.b", "tb-01.c"])

    assert (pruned.results, pruned.containers, pruned.attachments, pruned.partial) == (1, 1, 2, 1)
    assert sorted(p.name for p in d.iterdir()) == [
        "a1-attachment.txt",
        "c1-container.json",
        "categories.json",
        "u1-result.json",
    ]
    assert json.loads((d / "c1-container.json").read_text())["children"] == ["u1"]
    assert prune_results(d, ["tb-01.b"]).total == 0  # idempotent


def _junit(path: Path, cases: list[str]) -> None:
    body = "".join(
        f'<testcase classname="t" name="test_scenario[{c}]" time="1.0"/>' if c else "<testcase/>"
        for c in cases
    )
    path.write_text(
        f'<testsuites><testsuite name="pytest" tests="0">{body}</testsuite></testsuites>'
    )


def _names(path: Path) -> list[str]:
    return [c.get("name", "") for c in ET.parse(path).getroot().iter("testcase")]


def test_merge_junit_replaces_rerun_cases_and_recounts(tmp_path: Path) -> None:
    target, extra = tmp_path / "junit.xml", tmp_path / "junit.attempt-2.xml"
    _junit(target, ["a", "b", ""])  # "": the interrupted test pytest wrote without a name
    _junit(extra, ["b", "c"])
    merge_junit(target, extra, ["b", "c"])
    assert _names(target) == ["test_scenario[a]", "test_scenario[b]", "test_scenario[c]"]
    suite = ET.parse(target).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3"
    assert not extra.exists()


def test_journal_cases_fill_in_what_a_killed_pytest_never_wrote(tmp_path: Path) -> None:
    target = tmp_path / "junit.xml"
    _junit(target, ["c"])
    latest = {
        s: JournalEntry(s, "tb-01", o, "2026-01-01T00:00:00Z", 2.0, "documented")
        for s, o in (("a", Outcome.PASSED), ("b", Outcome.FAILED), ("c", Outcome.PASSED))
    }
    latest["d"] = JournalEntry("d", "tb-01", Outcome.NOT_RUN, "2026-01-01T00:00:00Z", 0, "none")
    assert add_journal_cases(target, latest) == 2
    assert sorted(_names(target)) == [f"test_scenario[{s}]" for s in "abc"]
    suite = ET.parse(target).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("3", "1")
