"""`harness run PLAN`: the main job.

    harness run testplans/smoke.yaml
    harness run testplans/nightly.yaml --lab lab_config/virtual.yaml --dut tb-01 --scenario '*.locked'

Today it validates the lab and the plan, selects the scenarios (by DUT and id glob) and shows
each with the oracle's expectation: the plan it would run. Executing scenarios against the lab
lands with the plan runner (issue "Run plans"); until then the command says so plainly and runs
nothing. Any error in the inputs is reported with file, line and key, exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli.common import config_errors_exit, usage_error
from harness.cli.plan_cmd import DEFAULT_LAB, expectations, table
from harness.config.lab import load_lab
from harness.config.plan import load_plan
from harness.config.scenarios import expand, select

NOT_YET = (
    "Not executed: running scenarios against the lab lands with the plan runner "
    '(issue "Run plans"). Nothing was changed on any DUT.'
)


def run(
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="The test plan YAML file."),
    lab_file: Path = typer.Option(DEFAULT_LAB, "--lab", help="The lab YAML file."),
    duts: list[str] = typer.Option(None, "--dut", help="Only these DUTs (repeatable)."),
    scenario: str = typer.Option(None, "--scenario", help="Only scenario ids matching this glob."),
) -> None:
    """Run a test plan against the lab (today: validate it and show what would run)."""
    with config_errors_exit():
        lab = load_lab(lab_file)
        plan = load_plan(plan_file)
        scenarios = expand(plan, lab)
    planned = {s.dut for s in scenarios}
    for name in duts or ():
        if name not in lab.duts:
            raise usage_error(f"--dut: no DUT '{name}' in {lab.path}")
        if name not in planned:
            raise usage_error(f"--dut: plan {plan.path} has no scenario on DUT '{name}'")
    chosen = select(scenarios, duts=duts or None, pattern=scenario)
    if not chosen:
        raise usage_error(
            f"--scenario: no scenario of {plan.path} matches {scenario!r}"
            + (f" on {', '.join(duts)}" if duts else "")
        )
    typer.echo("\n".join(table(plan, chosen, expectations(chosen))))
    typer.echo("")
    typer.echo(NOT_YET)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
