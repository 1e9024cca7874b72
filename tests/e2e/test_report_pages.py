"""Every run writes matrix.html, matrix.json and changes.json beside report.html, as a user runs
it: two real `harness run`s of one plan, the pages opened in headless Chromium."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.chromium import render_page, visible_text
from tests.e2e.test_cli_run import ROOT, allure_results, harness_run, journal
from tests.e2e.test_resume import _plan


def test_each_run_writes_its_matrix_and_what_changed(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    plan = _plan(tmp_path)  # smoke on tb-01: 2 packages × locked/unlocked
    first = harness_run(str(plan), "--reports", str(reports), "--no-report")
    assert first.returncode == 0, first.stdout + first.stderr
    first_dir = (reports / "latest").resolve()
    # --no-report: every file but report.html, and how to render it later
    assert not (first_dir / "report.html").exists()
    assert (first_dir / "matrix.html").is_file() and (first_dir / "junit.xml").is_file()
    assert (
        f"report.html not rendered (--no-report): render it with `harness report {first_dir}`"
        in first.stdout
    )
    assert "report: " not in first.stdout
    assert "changes: no previous run of this plan on this lab" in first.stdout
    second = harness_run(str(plan), "--reports", str(reports))
    assert second.returncode == 0, second.stdout + second.stderr
    run_dir = (reports / "latest").resolve()
    assert run_dir != first_dir
    assert f"changes since {first_dir.name}:\n  nothing" in second.stdout
    assert f"matrix: {run_dir / 'matrix.html'}" in second.stdout

    # one definition of a scenario's evidence: plan show, the journal and the matrix agree
    shown = subprocess.run(
        [sys.executable, "-m", "harness", "plan", "show", str(plan), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert shown.returncode == 0, shown.stderr
    planned = {s["id"]: s["evidence_level"] for s in json.loads(shown.stdout)["scenarios"]}
    journaled = {x["scenario"]: x["evidence_level"] for x in journal(run_dir)}
    assert journaled == planned and set(planned.values()) == {"documented"}

    changes = json.loads((run_dir / "changes.json").read_text())
    assert changes["previous_run"] == first_dir.name and changes["new_failures"] == []
    matrix = json.loads((run_dir / "matrix.json").read_text())
    assert matrix["virtual"] is True and matrix["counts"] == {"passed": 4}
    (table,) = matrix["tables"]
    assert table["dut"] == "tb-01" and len(table["columns"]) == 2
    cells = [c for row in table["rows"] for c in row["cells"]]
    assert len(cells) == 4
    assert {c["evidence_level"] for c in cells} == {"documented"}

    # each Allure result links to its cell, each cell to its Allure result
    results = allure_results(run_dir)
    by_name = {r["name"]: r for r in results}
    for cell in cells:
        result = by_name[cell["scenario"]]
        assert cell["allure_id"] == hashlib.md5(result["uuid"].encode()).hexdigest()
        assert {"name": "matrix", "url": f"matrix.html#{cell['scenario']}", "type": "link"} in (
            result["links"]
        )
        suites = {x["name"]: x["value"] for x in result["labels"] if "uite" in x["name"]}
        package = cell["scenario"].split(".")[2].replace("inf", "nvme-inf")
        assert suites == {
            "parentSuite": "tb-01",
            "suite": "KDP on · DMAGuard absent · DV off · test signing off",
            "subSuite": package,
        }

    dom, shot = render_page(run_dir / "matrix.html", tmp_path / "matrix")
    assert shot.stat().st_size > 10_000
    text = visible_text(dom)
    assert "Virtual lab: these results come from the simulated Windows" in text
    assert f"What changed since {first_dir.name}: nothing." in text
    locked = next(
        c for c in cells if c["scenario"].endswith("inf0.external.dv-off.kdp-on.guardx.locked")
    )
    assert f'id="{locked["scenario"]}"' in dom
    assert f'href="report.html#testresult/{locked["allure_id"]}"' in dom
    assert "1→1 55 ↑ ✓" in text  # expected→observed, blocked at plug, started after unlock

    # a link can carry the filters: the unlocked column only, then only what is not a pass
    dom, _ = render_page(run_dir / "matrix.html", tmp_path / "f1", fragment="session=unlocked")
    assert dom.count("visibility: hidden") == 2 and dom.count("visibility: visible") == 2
    dom, _ = render_page(run_dir / "matrix.html", tmp_path / "f2", fragment="notpass=1")
    assert dom.count("visibility: hidden") == 4  # every cell passed

    # the cell's link opens its test result in the single-file Allure report
    report, _ = render_page(
        run_dir / "report.html", tmp_path / "allure", fragment=f"testresult/{locked['allure_id']}"
    )
    assert locked["scenario"] in visible_text(report)
    assert 'class="test-result' in report

    # the atlas of both runs, and the oracle's answer beside what the lab measured
    atlas = subprocess.run(
        [sys.executable, "-m", "harness", "atlas", str(reports)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert atlas.returncode == 0, atlas.stderr
    assert "2 runs, 8 observations, 4 cells" in atlas.stdout and "disagrees" not in atlas.stdout
    data = json.loads((reports / "atlas" / "atlas.json").read_text())
    assert {c["observations"] for c in data["cells"]} == {2}
    dom, _ = render_page(reports / "atlas" / "atlas.html", tmp_path / "atlas")
    assert "2 runs, 8 observations, 4 cells; 0 where Windows disagreed" in visible_text(dom)
    expect = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "expect",
            "--build",
            "22631",
            "--inf",
            "0",
            "--port",
            "external",
            "--session",
            "locked",
            "--atlas",
            str(reports / "atlas" / "atlas.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert expect.returncode == 0, expect.stderr
    assert (
        "DEVPKEY 1, blocked at plug (Code 55), started after unlock, DMA probe ok: 2× on tb-01"
        in expect.stdout
    )
