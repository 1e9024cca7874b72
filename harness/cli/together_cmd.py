"""`harness run PLAN --lab LAB --together NAME`: several controllers run one plan on one pool
of DUTs together (docs/coordinator.md, "One plan, several controllers").

Each controller started with the same plan, lab, selection and NAME holds one free DUT of the
pool and takes the plan's boot-state groups (units) from the coordinator's shared queue until
none is left (`harness.coordinator.together`); every unit is an ordinary run of its own in the
reports folder. The selected scenarios must belong to one pool.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from harness.cli.common import ExitCode, config_errors_exit, usage_error
from harness.cli.run_job import RunJob
from harness.config.lab import Lab
from harness.config.plan import Plan
from harness.config.scenarios import Scenario, select
from harness.errors import InfrastructureError
from harness.lab.boot_state import BootState
from harness.lab.schedule import package_drivers, schedule


def units_of(scenarios: list[Scenario], lab: Lab) -> list[list[str]]:
    """The scenarios' ids grouped by boot state, groups in order of first appearance."""
    drivers = package_drivers(lab, scenarios)
    groups: dict[BootState, list[str]] = {}
    for s in scenarios:
        groups.setdefault(BootState.planned(s, drivers), []).append(s.id)
    return list(groups.values())


def run_together_cmd(
    *,
    lab: Lab,
    plan: Plan,
    chosen: list[Scenario],
    effort: str,
    wait: str | None,
    reports: Path,
    pytest_args: list[str],
    filters: dict[str, Any],
    render_html: bool = True,
) -> int:
    """Join (or start) the shared run `effort`; the exit code of the units run here."""
    if lab.coordinator is None:
        raise usage_error(f"--together: the lab {lab.path} has no coordinator to share work on")
    pools = {s.eligible for s in chosen}
    if len(pools) != 1:
        raise usage_error(
            "--together: the selected scenarios must all belong to one pool of DUTs "
            "(narrow them with --dut or --scenario)"
        )
    (pool,) = pools
    by_id = {s.id: s for s in chosen}

    def run_unit(dut: str, ids: list[str]) -> int:
        subset = select([by_id[i] for i in ids], duts=[dut])
        planned = schedule(subset, lab, package_drivers(lab, subset))
        job = RunJob(
            estimates={d.dut: d.estimated_lab_s for d in planned.duts},
            lab=lab,
            plan=plan,
            scenarios=planned.ordered(),
            reports=reports,
            pytest_args=list(pytest_args),
            argv=sys.argv[1:],
            filters={**filters, "duts": [dut], "together": effort},
            render_html=render_html,
        )
        return job.execute()

    from harness.coordinator.leases import Claim
    from harness.coordinator.run_leases import parse_duration, run_together

    with config_errors_exit():
        wait_s = parse_duration(wait) if wait is not None else None
        try:
            return run_together(
                lab,
                effort,
                list(pool),
                units_of(chosen, lab),
                Claim(plan=plan.name, purpose=plan.purpose),
                wait_s,
                reports,
                run_unit,
                echo=lambda line: typer.echo(line),
                drive_wait_s=plan.timeouts.teardown_s + 60,
            )
        except InfrastructureError as exc:
            typer.echo(f"error: {exc}", err=True)
            return ExitCode.INFRASTRUCTURE
