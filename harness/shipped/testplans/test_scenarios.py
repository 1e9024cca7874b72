"""The scenario tests: one test per scenario of the plans given with `--dma-plan`.

    harness run testplans/smoke.yaml              # the usual way: report, journal, progress
    pytest testplans/test_scenarios.py --dma-plan testplans/smoke.yaml --dma-scenario 'tb-01.*.locked'

`harness run` uses the `test_*.py` files next to the plan, else this module as packaged with the
harness (harness.shipped); `harness init` copies it next to the shipped plans.

Each runs the flow of DESIGN.md (driver package, conditions, unplug, session, plug, observe,
unlock, observe, teardown) and compares the observations with the oracle: see
harness/lab/flow.py and harness/pytest_plugin/execute.py.
"""

from __future__ import annotations

import pytest

from harness.lab.flow import ScenarioRunner
from harness.pytest_plugin.execute import execute
from harness.pytest_plugin.selection import PlannedScenario


def test_scenario(
    request: pytest.FixtureRequest, planned: PlannedScenario, scenario_runner: ScenarioRunner
) -> None:
    execute(request.node, planned, scenario_runner)
