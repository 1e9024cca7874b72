"""What this pytest session runs: the lab, the plans of `--plan`, and their scenarios after
`--dut`, `--scenario` and `--scenario-list`, in run order. Loaded once per process and kept in
the pytest config's stash; a bad file is a usage error naming the file, line and key.

Run order: per DUT, scenarios that need the same reboot-requiring conditions (KDP, DMAGuard,
Verifier, test signing) run together, then by driver package, then by session state, so a DUT
reboots only when its conditions change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config.lab import Lab, load_lab
from harness.config.plan import Plan, load_plan
from harness.config.scenarios import Scenario, expand, select
from harness.errors import ConfigError

_KEY = pytest.StashKey["Selection"]()
_SESSION_ORDER = {"unlocked": 0, "locked": 1, "no-user": 2}


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


def run_order_key(s: Scenario) -> tuple[str, ...]:
    return (
        s.dut,
        s.kdp.value,
        s.dmaguard.value,
        s.verifier_dma.value,
        s.test_signing.value,
        s.driver_package,
        s.port_name,
        str(_SESSION_ORDER.get(s.session.value, 9)),
    )


def _load(config: pytest.Config) -> Selection:
    lab = load_lab(config.getoption("--lab"))
    plans = tuple(load_plan(p) for p in config.getoption("--plan"))
    duts: list[str] = config.getoption("--dut") or []
    for name in duts:
        if name not in lab.duts:
            raise ConfigError(f"--dut: no DUT '{name}' in {lab.path}")
    pattern = config.getoption("--scenario")
    wanted: set[str] | None = None
    listing = config.getoption("--scenario-list")
    if listing:
        wanted = {
            line.strip()
            for line in Path(listing).read_text(encoding="utf-8").splitlines()
            if line.strip()
        }
    chosen: list[PlannedScenario] = []
    for plan in plans:
        scenarios = select(expand(plan, lab), duts=duts or None, pattern=pattern)
        chosen += [PlannedScenario(plan, s) for s in scenarios if wanted is None or s.id in wanted]
    chosen.sort(key=lambda p: run_order_key(p.scenario))
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
