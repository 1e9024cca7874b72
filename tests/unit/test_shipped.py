"""The labs and plans packaged in harness.shipped, the default lab, and the scenario test module
`harness run` hands to pytest (harness/cli/run_support.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import run_support
from harness.config.lab import load_lab
from harness.config.plan import load_plan
from harness.errors import ConfigError
from harness.shipped import (
    default_lab,
    packaged_lab,
    packaged_lab_dir,
    packaged_plans,
    packaged_testplans,
    scenario_tests_module,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "harness" / "shipped"


def test_packaged_files_are_those_of_the_package() -> None:
    assert packaged_lab() == SHIPPED / "lab_config" / "virtual.yaml"
    assert packaged_lab().is_file()
    assert scenario_tests_module() == SHIPPED / "testplans" / "test_scenarios.py"
    assert scenario_tests_module().is_file()
    assert [p.name for p in packaged_plans()] == [
        "nightly.yaml",
        "smoke.yaml",
        "tb_release_qualification.yaml",
    ]
    for name in ("virtual.yaml", "virtual_pool.yaml", "example_lab.yaml"):
        assert (packaged_lab_dir() / name).is_file(), name
    assert sorted(p.suffix for p in (packaged_lab_dir() / "packages").iterdir()) == sorted(
        [".cer", ".sys", ".sys", *[".inf"] * 7, *[".cat"] * 7]  # each INF with its catalog
    )


def test_repository_dirs_are_the_packaged_ones() -> None:
    """In a clone, lab_config/ and testplans/ at the root are the packaged directories."""
    assert (ROOT / "lab_config").resolve() == packaged_lab_dir().resolve()
    assert (ROOT / "testplans").resolve() == packaged_testplans().resolve()


def test_packaged_lab_and_plans_load() -> None:
    lab = load_lab(packaged_lab())
    assert set(lab.duts) == {"tb-01", "m2-01"}
    for plan in packaged_plans():
        load_plan(plan)


def test_default_lab_prefers_the_current_directory(tmp_path: Path) -> None:
    assert default_lab(tmp_path) == packaged_lab()
    local = tmp_path / "lab_config" / "virtual.yaml"
    local.parent.mkdir()
    local.write_text("duts: {}\n", encoding="utf-8")
    assert default_lab(tmp_path) == local


def test_default_lab_from_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_lab() == packaged_lab()
    monkeypatch.chdir(ROOT)
    assert default_lab() == Path("lab_config/virtual.yaml")


def test_scenario_tests_next_to_the_plan_first(tmp_path: Path) -> None:
    plan = tmp_path / "smoke.yaml"
    plan.write_text((packaged_testplans() / "smoke.yaml").read_text(encoding="utf-8"))
    (tmp_path / "test_mine.py").write_text("", encoding="utf-8")
    assert run_support.scenario_tests(plan) == [tmp_path / "test_mine.py"]


def test_scenario_tests_fall_back_to_the_packaged_module(tmp_path: Path) -> None:
    plan = tmp_path / "smoke.yaml"
    plan.write_text((packaged_testplans() / "smoke.yaml").read_text(encoding="utf-8"))
    assert run_support.scenario_tests(plan) == [scenario_tests_module()]


def test_scenario_tests_missing_everywhere_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_support, "scenario_tests_module", lambda: tmp_path / "gone.py")
    plan = tmp_path / "smoke.yaml"
    plan.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no test_\*\.py next to the plan") as err:
        run_support.scenario_tests(plan)
    assert str(err.value).startswith(f"{plan}:")


def test_shipped_module_imports_the_standard_library_only() -> None:
    """harness.shipped is imported by the pytest plugin at every pytest start."""
    code = (
        "import sys; before = set(sys.modules); import harness.shipped; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] in {'harness', 'yaml', 'pydantic', 'typer', 'pytest'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "['harness', 'harness.shipped']"
