"""`harness run --resume` after a kill between a scenario's journal line and its Allure result.

The window is a few milliseconds wide, so the test makes the state it leaves deterministically:
a real virtual-lab run of the 4-scenario resume plan, then cut back to what a SIGKILL of every
process of the run right after the second scenario's journal line leaves: two journal lines,
the second scenario's and the later scenarios' Allure results never written (their attachments
and containers are there), no junit.xml, report.html or matrix pages, and run.json without an
end (its processes are gone). The resume must run the last two scenarios and rebuild the second
one's result from its journal line, so report.html lists all four.
"""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path
from typing import Any

from harness.report.allure_prune import scenario_of
from harness.report.journal_allure import SOURCE_LABEL, SOURCE_VALUE
from tests.e2e.test_cli_run import allure_results, harness_run, journal
from tests.e2e.test_resume import SCENARIOS, _plan
from tests.integration.test_report_render import embedded_test_cases

#: Labels allure-pytest adds about the process that ran the test, gone with the killed process.
PROCESS_LABELS = {"thread", "language", "package"}


def _result_files(run_dir: Path, scenarios: set[str]) -> list[Path]:
    out = []
    for path in (run_dir / "allure-results").glob("*-result.json"):
        if scenario_of(json.loads(path.read_text())) in scenarios:
            out.append(path)
    return out


def _killed_after_journal_line(run_dir: Path, kept: int) -> None:
    """Cut a finished run back to a kill right after its `kept`-th journal line."""
    lines = (run_dir / "journal.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "journal.jsonl").write_text("".join(lines[:kept]))
    lost = {json.loads(line)["scenario"] for line in lines[kept - 1 :]}
    for path in _result_files(run_dir, lost):
        path.unlink()
    for name in ("junit.xml", "report.html", "matrix.html", "matrix.json", "changes.json"):
        (run_dir / name).unlink(missing_ok=True)
    info = json.loads((run_dir / "run.json").read_text())
    info["finished"] = info["exit_code"] = None
    info["attempts"][-1]["ended"] = info["attempts"][-1]["exit_code"] = None
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))


def _labels(result: dict[str, Any]) -> set[tuple[str, str]]:
    return {(x["name"], x.get("value", "")) for x in result["labels"]}


def test_resume_rebuilds_the_allure_result_of_a_scenario_journaled_before_the_kill(
    tmp_path: Path,
) -> None:
    reports = tmp_path / "reports"
    r = harness_run(str(_plan(tmp_path)), "--reports", str(reports))
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = (reports / "latest").resolve()
    victim = journal(run_dir)[1]["scenario"]
    (real,) = [x for x in allure_results(run_dir) if scenario_of(x) == victim]
    first_report = embedded_test_cases((run_dir / "report.html").read_text())
    assert len(first_report) == SCENARIOS

    _killed_after_journal_line(run_dir, 2)
    assert victim not in {scenario_of(x) for x in allure_results(run_dir)}
    r = harness_run("--resume", str(run_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 of 4 scenarios have no final outcome" in r.stdout

    results = allure_results(run_dir)
    assert sorted(scenario_of(x) for x in results) == sorted(
        json.loads((run_dir / "run.json").read_text())["scenarios"]
    )
    assert "rebuilt 1 Allure result from journal.jsonl" in r.stdout
    (rebuilt,) = [x for x in results if scenario_of(x) == victim]
    assert (SOURCE_LABEL, SOURCE_VALUE) in _labels(rebuilt)
    assert rebuilt["status"] == "passed" == journal(run_dir)[1]["outcome"]
    # identified as allure-pytest identified the scenario's real result
    for key in ("name", "fullName", "testCaseId", "historyId", "parameters", "links"):
        assert rebuilt[key] == real[key], key
    gone = {x for x in _labels(real) if x[0] in PROCESS_LABELS}
    gone.add(("host", socket.gethostname()))  # allure-pytest's label of the machine
    assert _labels(real) - gone <= _labels(rebuilt)
    assert abs(rebuilt["start"] - real["start"]) < 1000  # the journal's start, in ms
    assert rebuilt["stop"] - rebuilt["start"] == round(journal(run_dir)[1]["duration_s"] * 1000)

    # report.html has it, with the history id of the real result (Allure groups the two)
    cases = embedded_test_cases((run_dir / "report.html").read_text())
    assert set(cases) == set(first_report)
    assert cases[victim]["status"] == "passed"
    assert cases[victim]["historyId"] == first_report[victim]["historyId"]
    uid = hashlib.md5(rebuilt["uuid"].encode()).hexdigest()
    assert cases[victim]["uid"] == uid
    # and matrix.html's cell links to it
    matrix = json.loads((run_dir / "matrix.json").read_text())
    cells = {c["scenario"]: c for t in matrix["tables"] for row in t["rows"] for c in row["cells"]}
    assert cells[victim]["allure_id"] == uid
    assert f"#testresult/{uid}" in (run_dir / "matrix.html").read_text()

    # a second resume has nothing to run and rebuilds nothing
    before = {p.name: p.read_bytes() for p in _result_files(run_dir, set(cells))}
    again = harness_run("--resume", str(run_dir))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing left to run" in again.stdout and "rebuilt" not in again.stdout
    after = {p.name: p.read_bytes() for p in _result_files(run_dir, set(cells))}
    assert after == before
