"""Options of the harness's pytest plugin, and where each comes from.

    pytest testplans/ --dma-plan testplans/smoke.yaml --dma-lab lab_config/virtual.yaml \\
        --dma-dut tb-01 --dma-scenario 'tb-01.*.locked'

Every option is prefixed `--dma-` so that it never collides with a project's own `--plan` or
`--lab`. The plan and the lab can also come from the ini file (`dma_plan`, `dma_lab` in
`[tool.pytest.ini_options]` or pytest.ini) or from the environment (`DMA_HARNESS_PLAN`, several
plans separated by the OS path separator, and `DMA_HARNESS_LAB`); the command line wins over the
ini file, which wins over the environment. A relative path in the ini file is relative to the
ini file's directory.

`harness run` adds `--dma-run-dir` (journal, facts, progress) and `--dma-lab-endpoints` (the
endpoints file of the virtual lab it started, so pytest workers share one lab).

This module is imported at every pytest start in an environment with the harness installed: it
imports pytest and the standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

PLAN_ENV = "DMA_HARNESS_PLAN"
LAB_ENV = "DMA_HARNESS_LAB"
#: The default lab when none is named: `lab_config/virtual.yaml` of the current directory.
# the default lab, relative to the current directory; when it is absent, the virtual lab
# packaged with the harness (harness.shipped.default_lab)
DEFAULT_LAB = "lab_config/virtual.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dma-lab-harness", "DMA remapping lab harness")
    group.addoption(
        "--dma-lab",
        action="store",
        default=None,
        help=f"lab inventory YAML (ini dma_lab, env {LAB_ENV}; default: {DEFAULT_LAB}, else the "
        "packaged virtual lab). "
        "Giving a lab or a plan activates the plugin.",
    )
    group.addoption(
        "--dma-plan",
        action="append",
        default=[],
        help=f"test plan YAML to run (repeatable; ini dma_plan, env {PLAN_ENV})",
    )
    group.addoption(
        "--dma-dut", action="append", default=[], help="only scenarios on this DUT (repeatable)"
    )
    group.addoption(
        "--dma-scenario", action="store", default=None, help="only scenario ids matching this glob"
    )
    group.addoption(
        "--dma-scenario-list",
        action="store",
        default=None,
        help="file with one scenario id per line: only those (harness run uses it)",
    )
    group.addoption(
        "--dma-lab-endpoints",
        action="store",
        default=None,
        help="endpoints JSON of an already running virtual lab (else the plugin starts one)",
    )
    group.addoption(
        "--dma-run-dir",
        action="store",
        default=None,
        help="run directory for journal.jsonl, facts/ and progress/ (harness run sets it)",
    )
    parser.addini("dma_plan", "test plan YAML files the harness runs", type="paths", default=[])
    parser.addini("dma_lab", "lab inventory YAML of the harness", type="string", default="")


@dataclass(frozen=True)
class DmaOptions:
    """What the user asked of the plugin, from the command line, the ini file or the env."""

    plans: tuple[Path, ...]
    lab: Path | None  # None: not named anywhere (the default lab applies)
    duts: tuple[str, ...]
    scenario: str | None
    scenario_list: Path | None
    lab_endpoints: Path | None
    run_dir: Path | None

    @property
    def active(self) -> bool:
        """The plugin's fixtures and hooks are registered only when a plan or a lab is given."""
        return bool(self.plans) or self.lab is not None

    def lab_path(self) -> Path:
        """The lab named, or the default one: DEFAULT_LAB of the current directory if it exists,
        else the virtual lab packaged with the harness (harness.shipped.default_lab)."""
        if self.lab is not None:
            return self.lab
        from harness.shipped import default_lab  # standard library only

        return default_lab()


def read_options(config: pytest.Config) -> DmaOptions:
    opt = config.getoption
    plans = [Path(p) for p in opt("--dma-plan", None) or []]
    if not plans:
        plans = [Path(p) for p in config.getini("dma_plan") or []]
    if not plans and os.environ.get(PLAN_ENV):
        plans = [Path(p) for p in os.environ[PLAN_ENV].split(os.pathsep) if p]
    lab: str | None = opt("--dma-lab", None)
    lab_path: Path | None = Path(lab) if lab else None
    if lab_path is None:
        ini_lab = str(config.getini("dma_lab") or "").strip()
        if ini_lab:
            base = config.inipath.parent if config.inipath else Path.cwd()
            lab_path = base / ini_lab
    if lab_path is None and os.environ.get(LAB_ENV):
        lab_path = Path(os.environ[LAB_ENV])
    listing = opt("--dma-scenario-list", None)
    endpoints = opt("--dma-lab-endpoints", None)
    run_dir = opt("--dma-run-dir", None)
    return DmaOptions(
        plans=tuple(plans),
        lab=lab_path,
        duts=tuple(opt("--dma-dut", None) or ()),
        scenario=opt("--dma-scenario", None),
        scenario_list=Path(listing) if listing else None,
        lab_endpoints=Path(endpoints) if endpoints else None,
        run_dir=Path(run_dir) if run_dir else None,
    )
