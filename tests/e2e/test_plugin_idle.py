"""The plugin in somebody else's project: installed (entry point), no plan and no lab given.

It must stay out of the way: no lab machinery imported, `-n 2`, `-n auto`, `-p no:xdist`
and a conftest with its own `--plan`/`--lab` all pass. Each case runs a real pytest in a
temporary project with one trivial test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("paramiko", "winrm", "pyvisa", "harness.lab", "harness.virtual_lab", "harness.remote")

TRIVIAL = """
import json, os, sys

def test_trivial():
    assert 1 + 1 == 2

def test_zz_dump_modules():
    out = os.environ.get("DUMP_MODULES")
    if out:
        with open(out + "." + os.environ.get("PYTEST_XDIST_WORKER", "main"), "w") as f:
            json.dump(sorted(sys.modules), f)
"""

OWN_OPTIONS = """
def pytest_addoption(parser):
    parser.addoption("--plan", action="store", default=None)
    parser.addoption("--lab", action="store", default=None)
"""


def _project(tmp_path: Path, conftest: str = "") -> Path:
    (tmp_path / "test_other.py").write_text(TRIVIAL)
    if conftest:
        (tmp_path / "conftest.py").write_text(conftest)
    return tmp_path


def _pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "2 passed" in out, out
    return out


def test_nothing_heavy_is_imported_yet_the_plugin_is_loaded(tmp_path: Path) -> None:
    import os

    project = _project(tmp_path)
    dump = tmp_path / "modules"
    # not DMA_HARNESS_* (would activate the plugin), not PYTEST_XDIST_* (when this suite runs
    # under -n, the child would think it is an xdist worker and name its dump after it)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DMA_HARNESS_", "PYTEST_XDIST_"))
    }
    env["DUMP_MODULES"] = str(dump)
    out = _pytest(project, "--trace-config", env=env)
    assert "harness.pytest_plugin.plugin" in out  # loaded through its entry point
    modules = json.loads(Path(f"{dump}.main").read_text())
    assert "harness.pytest_plugin.plugin" in modules
    heavy = [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert heavy == [], heavy
    assert "harness.pytest_plugin.active" not in modules


@pytest.mark.parametrize(
    "args",
    [["-n", "2"], ["-n", "auto"], ["-p", "no:xdist"], ["-p", "no:xdist", "-p", "no:timeout"]],
    ids=["n2", "nauto", "no-xdist", "no-xdist-no-timeout"],
)
def test_other_pytest_invocations_pass(tmp_path: Path, args: list[str]) -> None:
    _pytest(_project(tmp_path), *args)


def test_a_conftest_with_its_own_plan_and_lab_options(tmp_path: Path) -> None:
    project = _project(tmp_path, OWN_OPTIONS)
    _pytest(project, "--plan", "mine.yaml", "--lab", "x")
    _pytest(project, "--plan", "mine.yaml", "-n", "2")


def test_given_a_lab_every_fixture_is_registered_and_documented(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    project = _project(tmp_path)
    lab = str(root / "lab_config" / "virtual.yaml")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--fixtures",
            "-v",
            "--dma-lab",
            lab,
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    ours = r.stdout.split("fixtures defined from harness.pytest_plugin")[1].split("\n---")[0]
    names = [line.split()[0] for line in ours.splitlines()[1:] if line and line[0] != " "]
    public = {"lab", "dut_pool", "dut", "scenario", "expected", "driver_package", "switch"}
    assert public | {"plugged_device", "planned_scenario", "scenario_runner"} <= set(names)
    assert "no docstring available" not in ours, ours
