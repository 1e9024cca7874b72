"""The fault campaign: every virtual-lab fault at several points of the scenario flow.

Each case is one run on its own virtual lab (tb-01 and m2-01 on separate switches) with one
fault armed on tb-01 at a point of the flow (`operation:` of `virtual.faults`, fired when tb-01
next runs that operation): config (`dmaguard_set`: the plan's DMAGuard 1 makes the strategy set
it and reboot), install (`driver_install`), waiting for the device (`pnp_devices`), the probe
(`storage_probe`), the end-of-run teardown (`driver_uninstall`). For each case: the run ends well
inside its timeout (nothing hangs), every planned scenario has exactly one journal record, tb-01's
scenarios end as the case expects, m2-01's pass (the run goes on), tb-01's teardown record says
at baseline or quarantined (never neither), and the evidence (retry, crash evidence, quarantine
reason) is in the journal, allure-results or the teardown record.

One test per case (pytest-xdist spreads them over its workers); most run pytest on the scenario
tests directly (as `harness run` does, without the HTML render), a few go through `harness run`.
Each case's row of the table of faults x points -> outcomes in docs/reliability.md (between
markers) must be what the case produced; UPDATE_RELIABILITY_DOC=1 writes the rows instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli.scenario_process import plugin_args, scenario_env
from harness.outcomes import Outcome, run_exit_code

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab_config" / "virtual.yaml"
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- fault-campaign:begin -->", "<!-- fault-campaign:end -->"
CASE_TIMEOUT_S = 150  # one case; a hang is far beyond its ~10-40 s
POINTS = {
    "config": "dmaguard_set",
    "install": "driver_install",
    "wait": "pnp_devices",
    "probe": "storage_probe",
    "teardown": "driver_uninstall",
}
TB_LOCKED = "tb-01.w11-22631.inf2.external.dv-off.kdp-on.guard1.locked"
TB_UNLOCKED = "tb-01.w11-22631.inf2.external.dv-off.kdp-on.guard1.unlocked"
M2 = (
    "m2-01.w10-19045.inf2.exposed.dv-off.kdp-on.guard1.locked",
    "m2-01.w10-19045.inf2.exposed.dv-off.kdp-on.guard1.unlocked",
)
P, INFRA, DUT, NOT_RUN = "passed", "infrastructure-error", "dut-error", "not-run"


@dataclass(frozen=True)
class Case:
    kind: str
    point: str
    tb: tuple[str, str]  # expected outcomes of TB_LOCKED, TB_UNLOCKED (run order)
    end: str  # tb-01's teardown record: "baseline" (ok), "quarantined"
    evidence: tuple[str, ...] = ()  # "retry", "crash", "quarantine", "teardown-retry", ...
    fault: dict[str, Any] = field(default_factory=dict)  # extra fault fields (count, factor)
    cli: bool = False  # through `harness run` (else pytest directly)
    xfail: str | None = None

    @property
    def id(self) -> str:
        return f"{self.kind}@{self.point}" + "".join(f",{k}={v}" for k, v in self.fault.items())


CASES = [
    Case("drop-connection", "install", (P, P), "baseline", ("retry",), cli=True),
    Case("drop-connection", "config", (P, P), "baseline", ("retry",)),
    Case("drop-connection", "wait", (P, P), "baseline", ("retry",)),
    Case("drop-connection", "probe", (P, P), "baseline", ("retry",)),
    Case("drop-connection", "teardown", (P, P), "baseline", ("teardown-retry",)),
    Case("refuse-connections", "install", (DUT, NOT_RUN), "quarantined", ("quarantine",)),
    Case("refuse-connections", "config", (DUT, NOT_RUN), "quarantined", ("quarantine",)),
    Case("refuse-connections", "probe", (DUT, NOT_RUN), "quarantined", ("quarantine",)),
    Case("refuse-connections", "teardown", (P, P), "quarantined", ("teardown-unreachable",)),
    Case("reboot-hang", "config", (DUT, NOT_RUN), "quarantined", ("quarantine",), cli=True),
    Case("reboot-hang", "teardown", (P, P), "quarantined", ("teardown-unreachable",)),
    Case("slow-reboot", "config", (P, P), "baseline", (), {"factor": 4.0}),
    Case("slow-reboot", "teardown", (P, P), "baseline", (), {"factor": 4.0}),
    Case(
        "bugcheck", "install", (DUT, NOT_RUN), "quarantined", ("crash", "quarantine"), {"count": 1}
    ),
    Case(
        "bugcheck", "config", (DUT, NOT_RUN), "quarantined", ("crash", "quarantine"), {"count": 1}
    ),
    Case(
        "bugcheck",
        "probe",
        (DUT, NOT_RUN),
        "quarantined",
        ("crash", "quarantine"),
        {"count": 1},
        cli=True,
    ),
    Case("bugcheck", "teardown", (P, P), "quarantined", ("teardown-crash",), {"count": 1}),
    Case("enumeration-failure", "config", (P, P), "baseline", ("retry",), {"count": 1}),
    Case("enumeration-failure", "wait", (P, P), "baseline", ("retry",), {"count": 1}),
    Case("enumeration-failure", "wait", (INFRA, NOT_RUN), "quarantined", ("quarantine",)),
    Case("switch-silent", "install", (INFRA, NOT_RUN), "quarantined", ("quarantine",)),
    Case("switch-silent", "probe", (P, INFRA), "quarantined", ("quarantine",)),
    Case("switch-error", "wait", (INFRA, NOT_RUN), "quarantined", ("quarantine",)),
    Case("switch-error", "probe", (P, INFRA), "quarantined", ("quarantine",)),
    Case("switch-stream", "probe", (P, INFRA), "quarantined", ("quarantine",)),
    Case("switch-garbage", "probe", (P, INFRA), "quarantined", ("quarantine",)),
    Case(
        "auth-failure",
        "install",
        (DUT, NOT_RUN),
        "quarantined",
        ("quarantine",),
    ),
    Case("auth-failure", "probe", (DUT, NOT_RUN), "quarantined", ("quarantine",)),
    Case(
        "auth-failure",
        "teardown",
        (P, P),
        "quarantined",
        ("teardown-unreachable",),
    ),
]


# -- lab, plan, one run ------------------------------------------------------------------------
def campaign_lab(folder: Path, fault: dict[str, Any]) -> Path:
    """The default virtual lab with m2-01 on its own switch, a small time scale and `fault`.

    Edited as text: a YAML round trip would turn the file's `on`/`off` into booleans."""
    text = LAB.read_text().replace("packages/", f"{ROOT / 'lab_config' / 'packages'}/")
    edits = [
        (
            "        switch: switch-1\n        channel: 2\n",
            "        switch: switch-2\n        channel: 1\n",
        ),
        (
            "  keyboard-1:\n    kind: hid-keyboard\n    resource: virtual\n",
            "  switch-2:\n    kind: scpi-switch\n    resource: virtual\n    timeout_s: 2\n"
            "    channels: 8\n  keyboard-1:\n    kind: hid-keyboard\n    resource: virtual\n",
        ),
        ("    timeout_s: 5\n    channels: 8\n", "    timeout_s: 2\n    channels: 8\n"),
        (
            "    switch-1:\n      kind: scpi-switch\n",
            "    switch-1:\n      kind: scpi-switch\n    switch-2:\n      kind: scpi-switch\n",
        ),
        ("  time_scale: 0.045\n", "  time_scale: 0.02\n"),
    ]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text += f"  faults:\n    - {json.dumps(fault)}\n"
    path = folder / "lab.yaml"
    path.write_text(text)
    return path


def campaign_plan(folder: Path) -> Path:
    plan = {
        "name": "fault-campaign",
        "purpose": "manual",
        "duts": {"names": ["tb-01", "m2-01"]},
        "devices": ["nvme-tb", "nvme-m2"],
        "driver_packages": ["nvme-inf2"],
        "matrix": {
            "kdp": ["on"],
            "dmaguard": ["1"],  # not the baseline: config sets it and reboots
            "verifier_dma": ["off"],
            "test_signing": ["off"],
            "session": ["locked", "unlocked"],
            "port": ["external", "exposed"],
        },
        "timeouts": {
            "scenario_s": 60,
            "step_s": 10,
            "reboot_s": 12,
            "plug_s": 6,
            "remote_call_s": 8,
        },
        "retries": {"infrastructure": 1, "quarantine_after": 1},
    }
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


@dataclass
class Run:
    case: Case
    folder: Path
    run_dir: Path
    returncode: int
    duration_s: float
    output: str

    def journal(self) -> list[dict[str, Any]]:
        path = self.run_dir / "journal.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def teardown(self, dut: str) -> dict[str, Any] | None:
        path = self.run_dir / "teardown" / f"{dut}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def allure_text(self) -> str:
        """Every result (steps, messages) and text attachment of the run, as one string."""
        results = self.run_dir / "allure-results"
        parts = [p.read_text(errors="replace") for p in sorted(results.glob("*-result.json"))]
        parts += [p.read_text(errors="replace") for p in sorted(results.glob("*-attachment*"))]
        return "\n".join(parts)

    def lab_problems(self) -> str:
        """The virtual lab's warnings and errors (its log, kept in the run directory)."""
        path = self.run_dir / "virtual-lab.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        keep = (" WARNING ", " ERROR ", "Traceback", "Error:")
        return "\n".join(line for line in text.splitlines() if any(k in line for k in keep))

    def outcomes(self) -> dict[str, str]:
        return {line["scenario"]: line["outcome"] for line in self.journal()}


def run_case(case: Case, folder: Path) -> Run:
    fault = {"kind": case.kind, "dut": "tb-01", "operation": POINTS[case.point], **case.fault}
    if case.kind.startswith("switch-"):
        fault["instrument"] = "switch-1"
    lab, plan = campaign_lab(folder, fault), campaign_plan(folder)
    t0 = time.monotonic()
    if case.cli:
        reports = folder / "reports"
        cmd = [sys.executable, "-m", "harness", "run", str(plan), "--lab", str(lab)]
        cmd += ["--reports", str(reports)]
    else:
        reports = folder / "run"
        reports.mkdir()
        cmd = [sys.executable, "-m", "pytest", "testplans/test_scenarios.py"]
        cmd += ["-p", "no:cacheprovider", *plugin_args(), "-q", "-rN", "--color=no"]
        cmd += [
            "--rootdir",
            str(ROOT / "testplans"),
            "--dma-lab",
            str(lab),
            "--dma-plan",
            str(plan),
        ]
        cmd += ["--dma-run-dir", str(reports)]
        cmd += ["--alluredir", str(reports / "allure-results")]
    try:
        r = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT_S,
            env=scenario_env(os.environ),  # the plugins of `harness run`, no others
        )
        rc, out = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out = -1, f"HUNG: no end within {CASE_TIMEOUT_S} s\n{exc.stdout!r}{exc.stderr!r}"
    duration = time.monotonic() - t0
    run_dir = (
        (reports / "latest").resolve() if case.cli and (reports / "latest").exists() else reports
    )
    return Run(case, folder, run_dir, rc, duration, out)


def _tb_end(run: Run) -> str:
    td = run.teardown("tb-01")
    if td is None:
        return "no teardown record"
    if td["quarantined"]:
        return "quarantined" + (" (at baseline)" if td["ok"] else "")
    return "at baseline" if td["ok"] else "NEITHER"


def _evidence(run: Run) -> str:
    found = []
    lines = run.journal()
    if any(line.get("retries") for line in lines):
        found.append("retry in journal + Allure step")
    if any("quarantined" in line for line in lines):
        found.append("quarantine reason")
    td = run.teardown("tb-01") or {}
    if td.get("crash"):
        found.append("crash evidence in teardown record")
    elif "bugcheck 0x000000E6" in run.allure_text():
        found.append("crash evidence attached")
    if "unreachable" in (td.get("quarantined") or ""):
        found.append("teardown: unreachable")
    if any("retried once" in n for n in td.get("notes", ())):
        found.append("teardown retry")
    return ", ".join(found) or "-"


def _m2(got: dict[str, str]) -> str:
    seen = {got.get(s, "missing") for s in M2}
    return ", ".join(sorted(seen))


TABLE_HEAD = (
    "| fault | point | tb-01 locked | tb-01 unlocked | m2-01 (2) | tb-01 end state | evidence "
    "| exit code |\n|---|---|---|---|---|---|---|---|"
)


def row_key(case: Case) -> str:
    """The first two cells of a case's row: which fault, at which point."""
    extra = "".join(f" ({k} {v})" for k, v in case.fault.items())
    return f"| {case.kind}{extra} | {case.point} (`{POINTS[case.point]}`) |"


def render_row(run: Run) -> str:
    got = run.outcomes()
    outcomes = [Outcome(o) for o in got.values()]
    return (
        f"{row_key(run.case)} {got.get(TB_LOCKED, '-')} "
        f"| {got.get(TB_UNLOCKED, '-')} | {_m2(got)} | {_tb_end(run)} "
        f"| {_evidence(run)} | {run_exit_code(outcomes) if outcomes else '-'} |"
    )


def committed_rows() -> list[str]:
    text = DOC.read_text()
    table = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip().splitlines()
    return table[2:]


def update_doc_row(run: Run) -> None:
    """Put this case's row into docs/reliability.md's table, in CASES order
    (UPDATE_RELIABILITY_DOC=1); cases run in parallel (xdist workers), so under a file lock."""
    from filelock import FileLock

    with FileLock(str(DOC) + ".lock", timeout=60):
        text = DOC.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        rows = {row_key(c): r for c in CASES for r in committed_rows() if r.startswith(row_key(c))}
        rows[row_key(run.case)] = render_row(run)
        ordered = [rows[row_key(c)] for c in CASES if row_key(c) in rows]
        table = "\n".join([TABLE_HEAD, *ordered])
        DOC.write_text(text[:start] + "\n" + table + "\n" + text[end:])


# -- the checks, one test per case --------------------------------------------------------------
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=True)] if c.xfail else []
        )
        for c in CASES
    ],
)
def test_fault(case: Case, tmp_path: Path) -> None:
    run = run_case(case, tmp_path)
    if os.environ.get("UPDATE_RELIABILITY_DOC") == "1":
        update_doc_row(run)
    where = f"{run.folder}\n{run.output[-3000:]}\nvirtual lab:\n{run.lab_problems()[-3000:]}"
    assert run.returncode != -1, f"the run hung: {where}"
    assert run.duration_s < CASE_TIMEOUT_S - 10, where
    lines = run.journal()
    scenarios = [line["scenario"] for line in lines]
    assert sorted(scenarios) == sorted([TB_LOCKED, TB_UNLOCKED, *M2]), where  # one record each
    got = run.outcomes()
    assert (got[TB_LOCKED], got[TB_UNLOCKED]) == case.tb, where
    assert all(got[s] == P for s in M2), where  # the run goes on with the other DUT
    outcomes = [Outcome(o) for o in got.values()]
    if case.cli:
        assert run.returncode == run_exit_code(outcomes), where
        assert (run.run_dir / "report.html").is_file()
    # tb-01 ends at its baseline or quarantined, never neither; m2-01 at its baseline
    td = run.teardown("tb-01")
    assert td is not None, where
    assert td["ok"] or td["quarantined"], td
    m2 = run.teardown("m2-01")
    assert m2 is not None and m2["ok"] and not m2["quarantined"], (m2, where)
    if case.end == "baseline":
        assert td["ok"] and not td["quarantined"], td
    else:
        assert td["quarantined"], td
    by_id = {line["scenario"]: line for line in lines}
    allure = run.allure_text()
    for kind in case.evidence:
        if kind == "retry":
            first = by_id[TB_LOCKED]
            assert first["attempts"] == 2 and first["retries"], first
            assert "retry 1 of 1 after" in allure
        elif kind == "crash":
            assert "bugcheck 0x000000E6" in allure and "MEMORY.DMP" in allure, where
            assert "crashed" in by_id[TB_LOCKED]["message"]
        elif kind == "quarantine":
            assert "quarantined" in by_id[TB_LOCKED] or any("quarantined" in x for x in lines)
            skipped = [x for x in lines if x["outcome"] == NOT_RUN]
            assert all("quarantined" in x["message"] for x in skipped), skipped
            assert "quarantined" in allure
        elif kind == "teardown-retry":
            assert any("retried once" in n for n in td["notes"]), td
        elif kind == "teardown-crash":
            assert td["crash"] and "0x000000E6" in td["crash"] and "crashed" in td["quarantined"], (
                td
            )
        elif kind == "teardown-unreachable":
            assert not td["ok"] and "unreachable" in td["quarantined"], td
    # docs/reliability.md holds this case's row as the case produced it (outcomes matched across
    # repeated runs); regenerate with UPDATE_RELIABILITY_DOC=1 after a change of behaviour
    assert render_row(run) in committed_rows(), render_row(run)


def test_the_committed_table_has_one_row_per_case_in_order() -> None:
    """Each case's row is checked by its own test; here: no case missing, none left over."""
    text = DOC.read_text()
    table = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip().splitlines()
    assert "\n".join(table[:2]) == TABLE_HEAD
    assert len(table) - 2 == len(CASES)
    assert len({row_key(c) for c in CASES}) == len(CASES)  # one row names one case
    keys = [r[: len(row_key(c))] for r, c in zip(table[2:], CASES, strict=True)]
    assert keys == [row_key(c) for c in CASES]
