"""The harness used outside the repository: a plan and a lab copied to another directory, run
from an unrelated working directory, with the packaged virtual lab and scenario tests.

The reported crash: `harness run /tmp/x/smoke.yaml` from /tmp had no default lab (exit 2), and
with a lab given the scenario test module was looked up only after the virtual lab had started
(a traceback in a non-editable install).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import run_support
from harness.cli.main import app
from harness.shipped import packaged_lab, packaged_lab_dir, packaged_testplans

TIMEOUT_S = 240


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": ""},
    )


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, Path]:
    """(a directory holding a copy of smoke.yaml and nothing else, an unrelated cwd)."""
    plans = tmp_path / "x"
    plans.mkdir()
    shutil.copy(packaged_testplans() / "smoke.yaml", plans / "smoke.yaml")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return plans, cwd


def test_run_a_copied_plan_from_another_directory(elsewhere: tuple[Path, Path]) -> None:
    """No lab_config/ here and no test_*.py next to the plan: the packaged lab and tests."""
    plans, cwd = elsewhere
    r = harness("run", str(plans / "smoke.yaml"), "--reports", "reports", cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert "8 of 8 scenarios: 8 passed" in r.stdout
    assert (cwd / "reports" / "latest" / "journal.jsonl").is_file()


def test_plan_show_from_another_directory_uses_the_packaged_lab(
    elsewhere: tuple[Path, Path],
) -> None:
    plans, cwd = elsewhere
    r = harness("plan", "show", str(plans / "smoke.yaml"), "--json", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert f'"lab_file": "{packaged_lab()}"' in r.stdout


def test_bad_copied_plan_is_refused_before_the_lab(elsewhere: tuple[Path, Path]) -> None:
    plans, cwd = elsewhere
    plan = plans / "smoke.yaml"
    text = plan.read_text(encoding="utf-8")
    plan.write_text(text.replace("devices: [nvme-tb, nvme-m2]", "devices: [nvme-tb, nvme-zz]"))
    line = next(i for i, t in enumerate(plan.read_text().splitlines(), 1) if "nvme-zz" in t)
    r = harness("run", str(plan), "--reports", "reports", cwd=cwd)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{plan}:{line}: devices[1]: unknown device 'nvme-zz'" in r.stderr
    assert "starting the virtual lab" not in r.stdout
    assert not (cwd / "reports").exists()


def test_no_scenario_tests_anywhere_is_refused_before_the_lab(
    elsewhere: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The packaged test module missing too (a broken install): exit 2 naming the plan, and
    neither the virtual lab nor the run is started."""
    plans, cwd = elsewhere
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(run_support, "scenario_tests_module", lambda: cwd / "gone.py")

    def no_lab(*_a: object, **_k: object) -> None:
        raise AssertionError("the virtual lab was started")

    monkeypatch.setattr("harness.virtual_lab.launcher.start_virtual_lab", no_lab)
    monkeypatch.setattr("harness.cli.run_job.RunJob.execute", no_lab)
    r = CliRunner().invoke(app, ["run", str(plans / "smoke.yaml"), "--reports", "reports"])
    assert r.exit_code == 2, r.output
    assert f"{plans / 'smoke.yaml'}: no test_*.py next to the plan" in r.stderr
    assert not (cwd / "reports").exists()


def test_copied_lab_resolves_its_paths_from_its_own_file(tmp_path: Path) -> None:
    """A real lab's CA, known_hosts, key file and driver packages are relative to the lab file,
    whatever the working directory."""
    lab_dir = tmp_path / "mylab"
    shutil.copytree(packaged_lab_dir(), lab_dir)
    for rel in ("certs/lab-ca.pem", "ssh/known_hosts", "ssh/dma-runner_ed25519"):
        (lab_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (lab_dir / rel).write_text("placeholder\n", encoding="utf-8")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = harness("lab", "validate", "../mylab/example_lab.yaml", cwd=cwd)
    assert r.returncode == 0, r.stderr
    (lab_dir / "ssh" / "known_hosts").unlink()
    r = harness("lab", "validate", "../mylab/example_lab.yaml", cwd=cwd)
    assert r.returncode == 2
    assert "known_hosts: file not found: ../mylab/ssh/known_hosts" in r.stderr
    plan = packaged_testplans() / "nightly.yaml"
    r = harness("plan", "show", str(plan), "--lab", "../mylab/virtual.yaml", cwd=cwd)
    assert r.returncode == 0, r.stderr
