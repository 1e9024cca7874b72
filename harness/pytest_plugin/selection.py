"""What this pytest session runs: the lab, the plans of `--plan`, and their scenarios after
`--dut`, `--scenario` and `--scenario-list`, in run order. Loaded once per process and kept in
the pytest config's stash; a bad file is a usage error naming the file, line and key.

Run order: `harness.lab.schedule` assigns each scenario its DUT (a pool's scenarios spread over
its DUTs) and orders each DUT's scenarios so it reboots as few times as possible: by boot state
(KDP, DMAGuard, Verifier, test signing), then driver package, then session state. The order is
a pure function of the files and options, so every xdist worker collects the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.config.plan import Plan, load_plan
from harness.config.scenarios import Scenario, expand, select
from harness.errors import ConfigError
from harness.lab.schedule import package_drivers, schedule
from harness.pytest_plugin.options import read_options

_KEY = pytest.StashKey["Selection"]()


@dataclass(frozen=True)
class PlannedScenario:
    plan: Plan
    scenario: Scenario

    @property
    def id(self) -> str:
        return self.scenario.id

    def __repr__(self) -> str:  # pytest and Allure show parameters by repr: keep it the id
        return self.scenario.id


@dataclass(frozen=True)
class Selection:
    lab: Lab
    plans: tuple[Plan, ...]
    scenarios: tuple[PlannedScenario, ...]

    @property
    def duts(self) -> list[str]:
        return sorted({p.scenario.dut for p in self.scenarios})


def run_order(scenarios: list[Scenario], lab: Lab) -> list[Scenario]:
    """The scenarios with their DUTs assigned, in run order (DUT by DUT)."""
    if not scenarios:
        return []
    return schedule(scenarios, lab, package_drivers(lab, scenarios)).ordered()


def _load(config: pytest.Config) -> Selection:
    options = read_options(config)
    lab = load_lab(options.lab_path())
    plans = tuple(load_plan(p) for p in options.plans)
    duts: list[str] = list(options.duts)
    for name in duts:
        if name not in lab.duts:
            raise ConfigError(f"--dut: no DUT '{name}' in {lab.path}")
    pattern = options.scenario
    wanted: set[str] | None = None
    listing = options.scenario_list
    if listing:
        wanted = {
            line.strip()
            for line in Path(listing).read_text(encoding="utf-8").splitlines()
            if line.strip()
        }
    chosen: list[PlannedScenario] = []
    for plan in plans:
        scenarios = select(expand(plan, lab), duts=duts or None, pattern=pattern)
        scenarios = [s for s in scenarios if wanted is None or s.id in wanted]
        chosen += [PlannedScenario(plan, s) for s in run_order(scenarios, lab)]
    return Selection(lab, plans, tuple(chosen))


def selection(config: pytest.Config) -> Selection:
    """The session's selection, loaded on first use; bad input is a pytest usage error."""
    found = config.stash.get(_KEY, None)
    if found is None:
        try:
            found = _load(config)
        except (ConfigError, OSError) as exc:
            raise pytest.UsageError(f"harness: {exc}") from None
        config.stash[_KEY] = found
    return found
