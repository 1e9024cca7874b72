"""The `lab`, `plan` and `schema` commands, in process and as the installed script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from harness.cli.main import app
from harness.config.yaml_loader import load_yaml
from harness.domain.policy import FIELDS

ROOT = Path(__file__).resolve().parents[2]
VIRTUAL = ROOT / "lab_config" / "virtual.yaml"
PLANS = sorted((ROOT / "testplans").glob("*.yaml"))
runner = CliRunner()

SCENARIO_KEYS = {
    "id",
    "dut",
    "build",
    "device",
    "driver_package",
    "port",
    "conditions",
    "expectation",
    "evidence_level",
}
CONDITION_KEYS = {
    "kdp",
    "dmaguard",
    "verifier_dma",
    "test_signing",
    "session",
    "port",
    "driver_package",
    "device",
    "inf",
    "device_remapping_supported",
    "device_remapping_flags",
    "graphics",
}
EXPECTATION_KEYS = {*FIELDS, "evidence", "reasons"}


def test_lab_validate_virtual() -> None:
    result = runner.invoke(app, ["lab", "validate", str(VIRTUAL)])
    assert result.exit_code == 0, result.output
    assert "tb-01 [virtual]" in result.output and "build 22631" in result.output
    assert "dmalab_nvme=1, dmalab_flt=0" in result.output


def test_lab_validate_example_needs_no_file_checks() -> None:
    example = ROOT / "lab_config" / "example_lab.yaml"
    assert runner.invoke(app, ["lab", "validate", str(example), "--no-file-checks"]).exit_code == 0
    result = runner.invoke(app, ["lab", "validate", str(example)])
    assert result.exit_code == 2
    assert "ca_file: file not found" in result.stderr


def test_lab_validate_literal_secret_not_echoed(tmp_path: Path) -> None:
    text = (ROOT / "lab_config" / "example_lab.yaml").read_text()
    bad = tmp_path / "lab.yaml"
    bad.write_text(text.replace("env:DMALAB_WINRM_PASSWORD", "Tr0ub4dor&3"))
    result = runner.invoke(app, ["lab", "validate", str(bad), "--no-file-checks"])
    assert result.exit_code == 2
    assert "a literal secret is not allowed" in result.stderr
    assert "Tr0ub4dor&3" not in result.output + result.stderr


@pytest.mark.parametrize("plan", PLANS, ids=[p.name for p in PLANS])
def test_plan_show_json_shape(plan: Path) -> None:
    result = runner.invoke(app, ["plan", "show", str(plan), "--lab", str(VIRTUAL), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {
        "plan",
        "purpose",
        "plan_file",
        "lab_file",
        "count",
        "totals",
        "duts",
        "scenarios",
    }
    assert doc["plan"] == plan.stem
    assert doc["plan_file"] == str(plan) and doc["lab_file"] == str(VIRTUAL)
    assert doc["count"] == len(doc["scenarios"]) == sum(d["count"] for d in doc["duts"].values())
    for s in doc["scenarios"]:
        assert set(s) == SCENARIO_KEYS
        assert set(s["port"]) == {"name", "kind"}
        assert set(s["conditions"]) == CONDITION_KEYS
        assert set(s["expectation"]) == EXPECTATION_KEYS
        assert doc["duts"][s["dut"]]["build"] == s["build"]
    # The schedule: every scenario exactly once, on its DUT; reboots at the lower bound.
    scheduled = [sid for d in doc["duts"].values() for sid in d["schedule"]]
    assert sorted(scheduled) == sorted(s["id"] for s in doc["scenarios"])
    where = {sid: dut for dut, d in doc["duts"].items() for sid in d["schedule"]}
    assert all(where[s["id"]] == s["dut"] for s in doc["scenarios"])
    for d in doc["duts"].values():
        assert d["reboots"] == d["reboot_lower_bound"] <= d["plan_order_reboots"]
        assert d["estimated_lab_s"] > 0
    totals = doc["totals"]
    assert totals["reboots"] == sum(d["reboots"] for d in doc["duts"].values())
    assert totals["estimated_wall_s"] == max(d["estimated_lab_s"] for d in doc["duts"].values())


def test_plan_show_table() -> None:
    result = runner.invoke(
        app, ["plan", "show", str(ROOT / "testplans" / "smoke.yaml"), "--lab", str(VIRTUAL)]
    )
    assert result.exit_code == 0, result.output
    assert "blocked (Code 55)" in result.output
    assert "\n8 scenarios\n" in result.output
    assert "tb-01: 4 scenarios, 0 reboots (plan order 0, lower bound 0)" in result.output


def test_plan_show_default_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["plan", "show", "testplans/smoke.yaml", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["lab_file"] == "lab_config/virtual.yaml"


def test_plan_show_bad_plan_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text(
        "name: x\npurpose: manual\nduts: {names: [tb-01]}\ndevices: [nvme-tb]\ndriver_packages: [nvme-inf1]\nmatrix:\n  sesion: [locked]\n"
    )
    result = runner.invoke(app, ["plan", "show", str(bad), "--lab", str(VIRTUAL), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: {bad}:7: matrix: unknown key 'sesion'"


@pytest.mark.parametrize("kind", ["lab", "plan"])
def test_schema_validates_shipped_files(kind: str) -> None:
    result = runner.invoke(app, ["schema", kind])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    files = [VIRTUAL, ROOT / "lab_config" / "example_lab.yaml"] if kind == "lab" else PLANS
    for path in files:
        jsonschema.validate(load_yaml(path).data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**load_yaml(files[0]).data, "usr": 1}, schema)


def test_schema_unknown_kind() -> None:
    result = runner.invoke(app, ["schema", "fleet"])
    assert result.exit_code == 2
    assert "choose 'lab' or 'plan'" in result.stderr


def _harness() -> list[str]:
    """The CLI as the interpreter running the tests runs it (never a `harness` on PATH)."""
    return [sys.executable, "-m", "harness"]


def test_installed_script_plan_show_json() -> None:
    proc = subprocess.run(
        [*_harness(), "plan", "show", "testplans/tb_release_qualification.yaml", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["count"] == 24


@pytest.mark.parametrize(
    "text",
    ["- just\n- a list\n", "duts: [\n", "\x00\x01binary", "duts:\n  a: 1\n  a: 2\n"],
)
def test_installed_script_broken_lab_no_traceback(tmp_path: Path, text: str) -> None:
    bad = tmp_path / "lab.yaml"
    bad.write_text(text)
    for args in (["lab", "validate", str(bad)], ["plan", "show", str(PLANS[0]), "--lab", str(bad)]):
        proc = subprocess.run(
            [*_harness(), *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 2
        assert proc.stderr.startswith(f"error: {bad}")
        assert "Traceback" not in proc.stderr
