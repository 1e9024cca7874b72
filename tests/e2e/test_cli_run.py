"""`harness run` end to end: the real CLI in a subprocess, the virtual lab it starts, pytest,
the journal, the Allure report opened in headless Chromium, and reruns of failures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.outcomes import Outcome
from harness.report.allure_files import message_regex
from harness.report.qualification import verify_manifest
from harness.report.run_dir import RunDir
from harness.virtual_lab.catalog import verify_catalog
from tests.chromium import render_page

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab_config" / "virtual.yaml"
TIMEOUT_S = 240
SECRET_ENV, SECRET = "HARNESS_VIRTUAL_PASSWORD", "Smoke-S3cret-7f2a!"


def harness_run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


def journal(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]


def allure_results(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]


def lab_with(tmp_path: Path, **virtual: Any) -> Path:
    """The default virtual lab with extra `virtual.duts.tb-01` settings (quirks, faults).

    Edited as text: a YAML round trip would turn the file's `on`/`off` into booleans.
    """
    text = LAB.read_text().replace("packages/", f"{ROOT / 'lab_config' / 'packages'}/")
    extra = "".join(f"      {key}: {json.dumps(value)}\n" for key, value in virtual.items())
    assert text.count("      quirks: {}\n") == 1  # tb-01's
    text = text.replace(
        "      quirks: {}\n", extra if "quirks" in virtual else "      quirks: {}\n" + extra
    )
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


def plan_file(tmp_path: Path, name: str, purpose: str = "manual", **matrix: list[str]) -> Path:
    plan = {
        "name": name,
        "purpose": purpose,
        "duts": {"names": ["tb-01"]},
        "devices": ["nvme-tb"],
        "driver_packages": [matrix.pop("package", ["nvme-inf0"])[0]],
        "matrix": {"kdp": ["on"], **matrix},
        "timeouts": {"scenario_s": 300, "step_s": 120, "reboot_s": 120, "plug_s": 30},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def test_smoke_plan_passes_and_its_report_opens_in_a_browser(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    r = harness_run("testplans/smoke.yaml", "--reports", str(reports), env={SECRET_ENV: SECRET})
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = (reports / "latest").resolve()
    # The DUT password (typed on the lock screen, sent over WinRM/SSH) is nowhere in the run.
    assert SECRET not in r.stdout + r.stderr
    for f in run_dir.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    lines = journal(run_dir)
    assert len(lines) == 8
    assert {line["outcome"] for line in lines} == {"passed"}
    assert {line["dut"] for line in lines} == {"tb-01", "m2-01"}
    for line in lines:
        assert set(line) >= {"scenario", "dut", "outcome", "started", "duration_s"}
        assert line["evidence_level"] in ("documented", "inferred", "unverified")
    locked = next(
        line
        for line in lines
        if line["scenario"].endswith("inf0.external.dv-off.kdp-on.guardx.locked")
    )
    assert locked["observed"]["at_plug"]["problem_code"] == 55  # blocked while locked
    assert locked["observed"]["after_unlock"]["started"] is True  # and started at unlock
    junit = (run_dir / "junit.xml").read_text()
    assert junit.count("<testcase") == 8
    info = json.loads((run_dir / "run.json").read_text())
    assert info["exit_code"] == 0 and len(info["scenarios"]) == 8

    results = allure_results(run_dir)
    assert len(results) == 8
    one = next(x for x in results if x["name"] == locked["scenario"])
    labels = {(lab["name"], lab["value"]) for lab in one["labels"]}
    assert ("host", "tb-01") in labels and ("epic", "manual") in labels
    assert ("story", locked["scenario"]) in labels
    params = {p["name"]: p["value"].strip("'") for p in one["parameters"]}
    assert params["planned"] == locked["scenario"]
    assert params["session"] == "locked" and params["kdp"] == "on"
    steps = json.dumps(one["steps"])
    assert "switch-1: connect(1)" in steps and "tb-01: pnp_devices" not in steps.split("plug")[0]
    assert "tb-01: wait_for_device" in steps
    assert any(a["name"] == "transcript" for a in one["attachments"])

    html = run_dir / "report.html"
    assert html.is_file()
    dom, shot = render_page(html, tmp_path / "browser", fragment="#suites")
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert "test_scenario" in dom or "tb-01" in dom


def test_a_quirk_against_an_inferred_expectation_is_labelled_expectation_may_be_wrong(
    tmp_path: Path,
) -> None:
    # The docs only say a device never starts under DMAGuard policy 0; the oracle infers Code 55.
    lab = lab_with(tmp_path, quirks={"dmaguard_policy0_problem": 28})
    plan = plan_file(tmp_path, "quirk", dmaguard=["0"], session=["locked"])
    reports = tmp_path / "reports"
    r = harness_run(str(plan), "--lab", str(lab), "--reports", str(reports), "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    run_dir = (reports / "latest").resolve()
    (line,) = journal(run_dir)
    assert line["outcome"] == "expectation-may-be-wrong"
    assert line["evidence_level"] == "inferred"
    assert "problem_code: expected 55, observed 28" in line["message"]
    (result,) = allure_results(run_dir)
    assert result["status"] == "failed"
    message = result["statusDetails"]["message"]
    assert re.match(message_regex(Outcome.EXPECTATION_MAY_BE_WRONG), message), message
    assert not re.match(message_regex(Outcome.FAILED), message)
    categories = json.loads((run_dir / "allure-results" / "categories.json").read_text())
    assert any(c["name"].lower().startswith("expectation may be wrong") for c in categories)


def test_faulty_driver_under_verifier_fails_with_bugcheck_evidence_and_last_failed_reruns_it(
    tmp_path: Path,
) -> None:
    lab = lab_with(tmp_path, faulty_driver="dmalab_nvme")
    plan = plan_file(tmp_path, "faulty", verifier_dma=["off", "on"], session=["unlocked"])
    reports = tmp_path / "reports"
    r = harness_run(str(plan), "--lab", str(lab), "--reports", str(reports), "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    first = (reports / "latest").resolve()
    outcomes = {line["scenario"]: line["outcome"] for line in journal(first)}
    assert len(outcomes) == 2
    failed = [s for s, o in outcomes.items() if o != "passed"]
    assert len(failed) == 1 and ".dv-on." in failed[0] and outcomes[failed[0]] == "failed"
    (result,) = [x for x in allure_results(first) if x["name"] == failed[0]]
    assert result["status"] == "failed"
    assert "0x000000E6" in result["statusDetails"]["message"]
    evidence = [
        p.read_text()
        for p in (first / "allure-results").glob("*-attachment.txt")
        if "bugcheck 0x000000E6" in p.read_text() and "MEMORY.DMP" in p.read_text()
    ]
    assert evidence, "the crash evidence (bugcheck and dump) is attached"

    # without --lab: the lab of the run it reads (the faulty one), not the default lab
    again = harness_run(str(plan), "--reports", str(reports), "--last-failed", "--no-report")
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"the lab of run {first.name}: {lab}" in again.stdout
    second = (reports / "latest").resolve()
    assert second != first
    assert [line["scenario"] for line in journal(second)] == failed


def test_run_refuses_bad_input_before_any_lab_action(tmp_path: Path) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text("name: x\npurpose: nightly\nduts: {names: [tb-01]}\ndevices: [nvme-tb]\n")
    r = harness_run(str(plan), "--reports", str(tmp_path / "reports"))
    assert r.returncode == 2
    assert "bad.yaml" in r.stderr and "driver_packages" in r.stderr
    assert not (tmp_path / "reports").exists()
    r = harness_run("testplans/smoke.yaml", "-n", "many", "--reports", str(tmp_path / "r"))
    assert r.returncode == 2 and "-n" in r.stderr
    r = harness_run("testplans/smoke.yaml", "--last-failed", "--reports", str(tmp_path / "r"))
    assert r.returncode == 2 and "no earlier run" in r.stderr


def test_sigterm_mid_run_tears_down_keeps_the_journal_and_stops_the_lab(tmp_path: Path) -> None:
    import os
    import signal
    import time

    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "testplans/smoke.yaml", "--reports", str(reports)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        journals: list[Path] = []
        while not any(j.stat().st_size for j in journals):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "no scenario finished within 120 s"
            journals = list(reports.glob("*/journal.jsonl"))
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out  # not every scenario ran, none failed
    run_dir = journals[0].parent
    lines = journal(run_dir)
    assert 1 <= len(lines) < 8 and {line["outcome"] for line in lines} <= {"passed", "not-run"}
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 3
    assert "interrupted" in out
    left = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "pytest or the virtual lab of the run is still running"


def test_parallel_workers_each_drive_one_dut(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    r = harness_run("testplans/smoke.yaml", "-n", "auto", "--reports", str(reports), "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = journal((reports / "latest").resolve())
    assert len(lines) == 8
    workers = {d: {x["worker"] for x in lines if x["dut"] == d} for d in ("tb-01", "m2-01")}
    assert all(len(w) == 1 for w in workers.values()), workers  # one worker per DUT
    assert workers["tb-01"] != workers["m2-01"]  # -n auto: one worker for each DUT


def test_a_qualification_run_writes_a_bundle_whose_manifest_checks_out(tmp_path: Path) -> None:
    plan = plan_file(tmp_path, "qual", "qualification", package=["nvme-inf2"], session=["locked"])
    reports = tmp_path / "reports"
    r = harness_run(str(plan), "--reports", str(reports))
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = (reports / "latest").resolve()
    results = json.loads((run_dir / "qualification" / "results.json").read_text())
    assert results["verdict"] == "qualified"
    # what was qualified is recorded while it is installed, and kept after teardown removed it
    (pkg,) = results["driver_packages"]
    assert pkg["name"] == "nvme-inf2" and pkg["version"] and pkg["signer"]
    assert pkg["files"] and all(len(h) == 64 for h in pkg["files"].values())
    assert pkg["driver_ver"] == "03/14/2025,1.4.102.0" and pkg["class"] == "SCSIAdapter"
    assert pkg["provider"] == "DMA Lab" and "PCI\\VEN_144D&DEV_A808" in pkg["hardware_ids"]
    # the certificate pnputil judged it by (SHA-1 thumbprint), and each file's signature as seen
    assert pkg["signer_thumbprints"], pkg
    assert all(re.fullmatch(r"[0-9A-F]{40}", t) for t in pkg["signer_thumbprints"])
    # judged by its catalog (F5): the catalog's signer, not the vendor's signature on the .sys
    packages = ROOT / "lab_config" / "packages"
    catalog = verify_catalog(
        packages / "dmalab_nvme_inf2.cat",
        [(packages / "dmalab-virtual-release-root.cer").read_bytes()],
    )
    assert pkg["signer_thumbprints"] == [catalog.signer_thumbprint], pkg
    assert pkg["signer"] == catalog.signer_cn == "Virtual Windows Hardware Compatibility Publisher"
    assert "dmalab_nvme_inf2.cat: Valid" in pkg["signature_evidence"]
    assert "Valid" in pkg["signature_evidence"] and ".sys" in pkg["signature_evidence"]
    assert results["virtual_lab"] is True
    summary = (run_dir / "qualification" / "summary.html").read_text()
    assert "No driver package recorded" not in summary
    assert 'id="virtual-banner"' in summary and "<h2>Sign-off</h2>" in summary
    assert "<th>expected</th><th>observed</th>" in summary
    assert "signer thumbprint (SHA-1)" in summary and pkg["signer_thumbprints"][0] in summary
    assert "DEVPKEY 2; starts at plug" in summary  # INF 2, external port: expected and seen
    pdf = run_dir / "qualification" / "summary.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
    facts = [json.loads(f.read_text()) for f in (run_dir / "facts").glob("*.json")]
    assert any(f["packages"] and f["installed_now"] == [] for f in facts)
    assert json.loads((run_dir / "run.json").read_text())["finished"]
    # run.json is final before the manifest hashes it: the bundle checks out as written
    assert verify_manifest(RunDir(run_dir)) == []
    check = subprocess.run(
        ["sha256sum", "-c", "qualification/manifest.sha256"],
        cwd=run_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_pools_scenarios_spread_over_the_chosen_duts_one_worker_each(tmp_path: Path) -> None:
    """lab_config/virtual_pool.yaml: four interchangeable DUTs; `--dut` picks two of them."""
    reports = tmp_path / "reports"
    r = harness_run(
        "testplans/nightly.yaml",
        "--lab",
        "lab_config/virtual_pool.yaml",
        "--dut",
        "tb-02",
        "--dut",
        "tb-03",
        "--scenario",
        "*.inf1.external.dv-off.kdp-on.guard[x1].*",
        "-n",
        "auto",
        "--reports",
        str(reports),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = (reports / "latest").resolve()
    lines = journal(run_dir)
    assert len(lines) == 6 and {x["scenario"].split(".")[0] for x in lines} == {"tb-pool"}
    per_dut = {d: [x for x in lines if x["dut"] == d] for d in {x["dut"] for x in lines}}
    assert set(per_dut) == {"tb-02", "tb-03"}  # only the chosen DUTs, both used
    assert all(len({x["worker"] for x in v}) == 1 for v in per_dut.values())
    assert len({x["worker"] for x in lines}) == 2
    # Each DUT got one whole boot state (guard x = the baseline, guard 1): the lower bound.
    reboots = sum(bool(x.get("rebooted")) for x in lines)
    teardown = [json.loads(p.read_text()) for p in (run_dir / "teardown").glob("*.json")]
    assert {t["dut"] for t in teardown} == {"tb-02", "tb-03"} and all(t["ok"] for t in teardown)
    assert reboots + sum(t["rebooted"] for t in teardown) == 2


def test_native_windows_controller_is_refused_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from harness.cli.main import app

    monkeypatch.setattr("harness.cli.run_cmd.native_windows", lambda: True)
    r = CliRunner().invoke(app, ["run", "testplans/smoke.yaml", "--reports", str(tmp_path / "r")])
    assert r.exit_code == 2
    assert "Linux, macOS or WSL2" in r.output
    assert not (tmp_path / "r").exists()
