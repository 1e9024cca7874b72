"""What changed since the previous run (changes.py) and the matrix model (matrix.py), on run
directories written the way a run writes them (run.json, journal.jsonl, facts/<dut>.json)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.report.changes import (
    PreviousRun,
    compare_with_previous,
    previous_run,
    summary_lines,
)
from harness.report.matrix import build_matrix
from harness.report.matrix_html import cell_text, render_matrix_html
from harness.report.run_dir import RunDir, RunInfo

LAB = "lab_config/virtual.yaml"
ROOT = Path(__file__).resolve().parents[2]


def _entry(sid: str, outcome: str, *, policy: int = 1, started: bool = False) -> dict[str, Any]:
    dut = sid.split(".")[0]
    session = sid.rsplit(".", 1)[-1]
    return {
        "scenario": sid,
        "dut": dut,
        "outcome": outcome,
        "started": "2026-12-01T00:00:00Z",
        "duration_s": 1.0,
        "evidence_level": "documented",
        "conditions": {
            "kdp": "on",
            "dmaguard": "absent",
            "verifier_dma": "off",
            "session": session,
            "port": "external",
            "driver_package": sid.split(".")[2],
            "inf": [sid.split(".")[2][-1]],
        },
        "expected": {
            "devpkey": 1,
            "problem_code": 55,
            "starts_after_unlock": True,
            "evidence": {"devpkey": "documented", "problem_code": "documented"},
        },
        "observed": {
            "at_plug": {
                "started": started,
                "problem_code": 0 if started else 55,
                "dma_policy": policy,
            },
            "after_unlock": {"started": True},
            "probe_locked": None,
            "probe_ok": True,
        },
    }


def _run(
    root: Path,
    name: str,
    entries: list[dict[str, Any]],
    *,
    plan: str = "nightly",
    lab: str = LAB,
    facts: dict[str, dict[str, Any]] | None = None,
) -> RunDir:
    rd = RunDir(root / name)
    rd.create()
    info = RunInfo(
        run_id=name,
        plan="testplans/nightly.yaml",
        plan_name=plan,
        purpose="nightly",
        lab=lab,
        lab_sha256="",
        harness_version="0",
        started=name[:16],
        scenarios=[e["scenario"] for e in entries],
        cwd=str(ROOT),
    )
    rd.write_info(info)
    rd.journal.write_text("".join(json.dumps(e) + "\n" for e in entries))
    for dut, f in (facts or {}).items():
        (rd.facts / f"{dut}.json").write_text(json.dumps(f))
    return rd


A = "tb-01.w11-22631.inf0.external.dv-off.kdp-on.guardx.locked"
B = "tb-01.w11-22631.inf2.external.dv-off.kdp-on.guardx.locked"
C = "tb-01.w11-22631.inf1.external.dv-off.kdp-on.guardx.unlocked"
D = "tb-01.w11-22631.inf3.external.dv-off.kdp-on.guardx.unlocked"
FACTS = {"tb-01": {"build": 22631, "ubr": 4460, "kdp": True, "packages": []}}


def test_changes_name_new_failures_fixes_changed_values_facts_and_scenarios(tmp_path: Path) -> None:
    _run(
        tmp_path,
        "20261201T020000Z-nightly",
        [_entry(A, "passed"), _entry(B, "failed"), _entry(C, "observed"), _entry(D, "passed")],
        facts=FACTS,
    )
    now = _run(
        tmp_path,
        "20261202T020000Z-nightly",
        [
            _entry(A, "failed", policy=2),
            _entry(B, "passed"),
            _entry(C, "observed", started=True),
            _entry("tb-01.w11-22631.inf9.external.dv-off.kdp-on.guardx.locked", "passed"),
        ],
        facts={"tb-01": {**FACTS["tb-01"], "ubr": 4751}},
    )
    changes = compare_with_previous(now)
    assert changes["previous_run"] == "20261201T020000Z-nightly"
    assert [c["scenario"] for c in changes["new_failures"]] == [A]
    assert [c["scenario"] for c in changes["fixed"]] == [B]
    changed = {c["scenario"]: c for c in changes["changed_observations"]}
    assert set(changed) == {A, C}  # the undocumented cell (observed) is caught too
    assert "DEVPKEY 1 -> 2" in changed[A]["text"]
    assert "started at plug False -> True" in changed[C]["text"]
    assert [(f["fact"], f["before"], f["after"]) for f in changes["facts_changed"]] == [
        ("ubr", 4460, 4751)
    ]
    assert [c["scenario"] for c in changes["gone_scenarios"]] == [D]
    assert len(changes["new_scenarios"]) == 1
    text = "\n".join(summary_lines(changes))
    assert "new failure: " + A in text and "DUT fact changed: tb-01 ubr: 4460 -> 4751" in text


def test_the_previous_run_is_the_newest_earlier_one_of_the_same_plan_on_the_same_lab(
    tmp_path: Path,
) -> None:
    _run(tmp_path, "20261201T020000Z-nightly", [_entry(A, "passed")])
    _run(tmp_path, "20261202T020000Z-nightly", [_entry(A, "passed")])
    _run(tmp_path, "20261202T030000Z-smoke", [_entry(A, "passed")], plan="smoke")
    _run(
        tmp_path,
        "20261202T040000Z-nightly",
        [_entry(A, "passed")],
        lab="lab_config/example_lab.yaml",
    )
    _run(tmp_path, "20261202T050000Z-nightly", [])  # journaled nothing
    now = _run(tmp_path, "20261203T020000Z-nightly", [_entry(A, "passed")])
    _run(tmp_path, "20261204T020000Z-nightly", [_entry(A, "failed")])  # later: not "previous"
    prev = previous_run(now)
    assert prev is not None and prev.path.name == "20261202T020000Z-nightly"
    changes = compare_with_previous(now)
    assert not any(changes[k] for k in ("new_failures", "fixed", "changed_observations"))
    assert summary_lines(changes)[-1] == "  nothing"
    first = compare_with_previous(RunDir(tmp_path / "20261201T020000Z-nightly"))
    assert first == {"run": "20261201T020000Z-nightly", "previous_run": None}
    assert changes["previous_source"] == "reports folder"


def test_a_previous_run_from_the_coordinator_is_compared_instead_of_the_folder(
    tmp_path: Path,
) -> None:
    """Another controller's run (read from the coordinator by the CLI) is the previous run even
    when this folder has an older one of its own; a resume's line supersedes the first."""
    _run(tmp_path, "20261201T020000Z-nightly", [_entry(A, "failed")], facts=FACTS)
    now = _run(tmp_path, "20261203T020000Z-nightly", [_entry(A, "passed")], facts=FACTS)
    other = PreviousRun(
        name="20261202T020000Z-nightly",
        source="coordinator, controller lab-pc-2",
        entries=[_entry(A, "failed"), _entry(A, "passed", policy=2)],
        facts={"tb-01": {**FACTS["tb-01"], "ubr": 4300}},
    )
    changes = compare_with_previous(now, other)
    assert changes["previous_run"] == "20261202T020000Z-nightly"
    assert changes["previous_source"] == "coordinator, controller lab-pc-2"
    assert changes["fixed"] == []  # against the resumed (passed) line, not the first
    assert [c["scenario"] for c in changes["changed_observations"]] == [A]
    assert [(f["fact"], f["before"]) for f in changes["facts_changed"]] == [("ubr", 4300)]
    head = summary_lines(changes)[0]
    assert head == "changes since 20261202T020000Z-nightly (coordinator, controller lab-pc-2):"
    local = compare_with_previous(now)
    assert local["previous_run"] == "20261201T020000Z-nightly"
    assert local["previous_source"] == "reports folder"


def test_matrix_rows_are_packages_and_columns_conditions(tmp_path: Path) -> None:
    rd = _run(
        tmp_path,
        "20261201T020000Z-nightly",
        [_entry(A, "passed"), _entry(B, "failed", policy=2, started=True), _entry(C, "observed")],
        facts=FACTS,
    )
    m = build_matrix(rd)
    assert m.virtual is True  # lab_config/virtual.yaml has a virtual: section
    assert m.counts == {"passed": 1, "failed": 1, "observed": 1}
    (table,) = m.tables
    assert (table.dut, table.build) == ("tb-01", "22631.4460")
    assert table.columns == [
        "external · KDP on · DMAGuard absent · DV off · locked",
        "external · KDP on · DMAGuard absent · DV off · unlocked",
    ]
    assert [(r.package, r.directives) for r in table.rows] == [
        ("inf0", "INF 0"),
        ("inf2", "INF 2"),
        ("inf1", "INF 1"),
    ]
    a = table.rows[0].cells[0]
    assert cell_text(a) == "1→1 55 ↑ ✓"
    assert cell_text(table.rows[1].cells[0]) == "1→2 ↑ ✓"
    page = render_matrix_html(m)
    assert 'id="virtual-banner"' in page and f'id="{A}"' in page
    assert asdict(a)["evidence"] == {"devpkey": "documented", "problem_code": "documented"}
