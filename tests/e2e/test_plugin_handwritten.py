"""A hand-written test using the plugin's fixtures and the `dma_conditions` marker, run by plain
pytest: the `lab` fixture starts the virtual lab itself, `plugged_device` plugs the device
under the declared conditions, and teardown unplugs and unlocks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TEST = """
import pytest


@pytest.mark.dma_conditions(dut="tb-01", port="tb4", driver_package="nvme-inf0", session="locked")
def test_opted_out_driver_is_blocked_while_locked(plugged_device, driver_package, scenario, dut):
    assert scenario.id == "tb-01.w11-22631.inf0.external.dv-off.kdp-on.guardx.locked"
    assert driver_package.installed.published_name.startswith("oem")
    assert plugged_device.at_plug.problem_code == 55
    assert plugged_device.after_unlock.started


@pytest.mark.dma_conditions(dut="tb-01", port="tb4", driver_package="nvme-inf2")
def test_conditionally_opted_in_driver_starts(plugged_device, expected):
    assert plugged_device.at_plug.started
    assert plugged_device.at_plug.dma_policy == expected.devpkey == 2
    assert expected.evidence["devpkey"].value in ("documented", "inferred")


@pytest.mark.dma_conditions(dut="tb-01", port="tb4", driver_package="nvme-inf2")
def test_a_wrong_expectation_fails(plugged_device):
    assert plugged_device.at_plug.dma_policy == 0, "deliberately wrong"


@pytest.mark.dma_conditions(dut="tb-01", port="no-such-port", driver_package="nvme-inf2")
def test_a_bad_marker_is_a_usage_error(plugged_device):
    raise AssertionError("never runs")
"""


def test_handwritten_tests_with_the_marker(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(TEST)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tmp_path / "test_mine.py"),
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(tmp_path),
            "--dma-lab",
            str(ROOT / "lab_config" / "virtual.yaml"),
            "--dma-run-dir",
            str(run_dir),
            "--alluredir",
            str(tmp_path / "allure"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = r.stdout + r.stderr
    assert "2 passed" in out and "1 failed" in out, out
    assert "1 error" in out and "dma_conditions" in out and "no-such-port" in out, out
    # journaled like plan scenarios: outcome, DUT, the oracle's expectation
    entries = [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines()]
    outcomes = sorted(e["outcome"] for e in entries)
    assert outcomes == ["failed", "passed", "passed"], entries
    assert {e["dut"] for e in entries} == {"tb-01"}
    failed = next(e for e in entries if e["outcome"] == "failed")
    assert "deliberately wrong" in failed["message"]
    assert sorted(e["expected"]["devpkey"] for e in entries) == [1, 2, 2], entries
    # and in the Allure results with the scenario's labels
    results = [json.loads(f.read_text()) for f in (tmp_path / "allure").glob("*-result.json")]
    hosts = {lab["value"] for r in results for lab in r["labels"] if lab["name"] == "host"}
    assert "tb-01" in hosts, hosts
    titled = [r for r in results if any("inf0.external" in lab["value"] for lab in r["labels"])]
    assert len(titled) == 1, results
    assert {"kdp", "session", "port"} <= {p["name"] for p in titled[0]["parameters"]}
